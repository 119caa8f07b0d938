import { z } from 'zod';
import { ACCESS_MODES, CHECK_IDS, ROLE_NAMES, SESSION_STATES, SESSION_TYPES } from '@rcflow/domain';
import type { EligibilityDecision } from '@rcflow/domain';
import type { AuditVerification } from '@rcflow/audit';
import type { SessionView } from '@rcflow/sessions';
import type { ApiKeyView, IssuedApiKey } from './admin/api-keys.service';
import type { ClientSettingsView, Deployment } from './admin/client-settings.service';
import type { CollectionMembership, CollectionView } from './admin/collections.service';
import type { DeviceView } from './admin/devices.service';
import type { EnrolmentTokenView, IssuedEnrolmentToken } from './admin/enrolment-admin.service';
import type { GroupMembership, PrincipalDetailView, PrincipalView } from './admin/principals.service';
import type { RoleAssignmentView } from './admin/role-assignments.service';
import type { WhoAmIView } from './auth/whoami.controller';
import type { AuditItem } from './audit/audit-query';
import type { ScheduleView } from './schedules/schedules.service';
import type { IdentityView } from './tickets/external-ids.service';
import type { DeliveryView, DryRunView, IntegrationView } from './tickets/ticket-integrations.service';
import type { WritebackView } from './tickets/ticket-writebacks.service';
import type {
  AttemptView as WebhookAttemptView,
  DeliveryDetail as WebhookDeliveryDetail,
  DeliveryView as WebhookDeliveryView,
  IssuedWebhookSecret,
  WebhookView,
} from './webhooks/webhooks.service';

/**
 * What the API answers, as zod schemas for /docs (`@ApiReturns`): the shapes the services build
 * (their TypeScript views), written out once. `.meta({ id })` names a component of the document.
 */

const id = z.uuid();
const instant = z.iso.datetime({ offset: true });
const nullableInstant = instant.nullable();

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().meta({ description: 'Pass as `cursor` for the next page; null on the last page' }),
  });

export const changedResult = z.object({ changed: z.boolean().meta({ description: 'false when nothing had to change (idempotent)' }) });

export const healthView = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });

// Sessions.
export const sessionView = z
  .object({
    id,
    deviceId: id,
    viewerId: id,
    requesterId: id,
    type: z.enum(SESSION_TYPES),
    access: z.enum(ACCESS_MODES),
    reason: z.string().nullable(),
    ticketRef: z.string().nullable(),
    state: z.enum(SESSION_STATES),
    version: z.int().min(0),
    notBefore: nullableInstant,
    notAfter: nullableInstant,
    scheduleId: id.nullable(),
    occurrenceAt: nullableInstant,
    consentRule: z.string().nullable(),
    failureCause: z.string().nullable(),
    createdAt: instant,
    stateChangedAt: instant,
    startedAt: nullableInstant,
    endedAt: nullableInstant,
    durationSeconds: z.int().min(0).nullable(),
  })
  .meta({ id: 'Session' });

export const sessionAccepted = z
  .object({ id, state: z.enum(SESSION_STATES), url: z.string().meta({ example: '/v1/sessions/3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30' }) })
  .meta({ id: 'SessionAccepted' });

const checkResult = z.object({ id: z.enum(CHECK_IDS), number: z.int().min(1).max(10), passed: z.boolean(), detail: z.string() });

export const eligibilityDecision = z
  .object({ eligible: z.boolean(), checks: z.array(checkResult), consentRule: z.string(), unattended: z.boolean() })
  .meta({ id: 'EligibilityDecision' });

const storedDecision = z.object({
  eligible: z.boolean(),
  consentRule: z.string().nullable(),
  checks: z.array(checkResult),
  facts: z.record(z.string(), z.unknown()).meta({ description: 'The facts the checks were evaluated on' }),
  evaluatedAt: nullableInstant,
});

export const sessionDecision = z
  .object({ sessionId: id, state: z.enum(SESSION_STATES), ...storedDecision.shape })
  .meta({ id: 'SessionDecision' });

const timelineEntry = z.object({
  seq: z.int().min(0),
  at: nullableInstant,
  action: z.string(),
  state: z.string(),
  actor: z.object({ id: id.nullable(), kind: z.string() }),
  reason: z.string().nullable(),
  data: z.record(z.string(), z.unknown()),
});

const sessionNotice = z.object({
  remindMinutes: z.int().nullable(),
  askApproval: z.boolean(),
  id: id.nullable(),
  state: z.string(),
  approval: z.string().nullable(),
  answeredBy: z.string().nullable(),
  answeredAt: nullableInstant,
  windowStart: nullableInstant,
  windowEnd: nullableInstant,
});

export const sessionDetail = z
  .object({ ...sessionView.shape, timeline: z.array(timelineEntry), decision: storedDecision.nullable(), notice: sessionNotice.nullable() })
  .meta({ id: 'SessionDetail' });

export const viewerToken = z
  .object({
    token: z.string().meta({ example: 'rcv_3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30.s3cr3t' }),
    expiresAt: instant,
    connect: z.unknown().meta({ description: 'How the viewer reaches the device, as the agent reported it' }),
  })
  .meta({ id: 'ViewerToken' });

// Audit.
export const auditEvent = z
  .object({
    id: z.string().regex(/^\d+$/).meta({ example: '1042' }),
    stream: z.string().meta({ example: 'session:3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30' }),
    seq: z.int().min(0),
    occurredAt: instant,
    actor: z.object({ id: id.nullable(), kind: z.string().meta({ example: 'principal' }) }),
    action: z.string().meta({ example: 'session.requested' }),
    outcome: z.string().meta({ example: 'requested' }),
    sessionId: id.nullable(),
    deviceId: id.nullable(),
    viewerId: id.nullable(),
    ticketRef: z.string().nullable(),
    reason: z.string().nullable(),
    data: z.record(z.string(), z.unknown()),
    hash: z.string().meta({ example: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' }),
  })
  .meta({ id: 'AuditEvent' });

export const auditVerification = z
  .object({
    ok: z.boolean(),
    eventsChecked: z.int().min(0),
    streamsChecked: z.int().min(0),
    problems: z
      .array(z.record(z.string(), z.unknown()))
      .meta({ description: 'The first problems found (at most 100), where the trail breaks' }),
    checkpoint: z
      .record(z.string(), z.unknown())
      .optional()
      .meta({ description: 'The newest signed checkpoint checked against (takenAt, source), or that there is none' }),
  })
  .meta({ id: 'AuditVerification' });

// Administration.
export const collectionView = z
  .object({ id, name: z.string(), description: z.string().nullable(), memberCount: z.int().min(0), createdAt: instant, updatedAt: instant })
  .meta({ id: 'Collection' });
export const collectionMembership = z
  .object({ ...changedResult.shape, collectionId: id, deviceId: id })
  .meta({ id: 'CollectionMembership' });

export const deviceView = z
  .object({
    id,
    hostname: z.string().meta({ example: 'PC-0001' }),
    fqdn: z.string().nullable(),
    domainJoined: z.boolean(),
    domain: z.string().nullable(),
    osFamily: z.enum(['windows', 'linux', 'macos']),
    osBuild: z.string(),
    agentVersion: z.string().nullable(),
    lastHeartbeatAt: nullableInstant,
    loggedOnUser: z.string().nullable(),
    locked: z.boolean(),
    localAdministrators: z.array(z.string()),
    enrolled: z.boolean(),
    retired: z.boolean(),
    appliedSettingsHash: z.string().nullable(),
    collectionIds: z.array(id),
    createdAt: instant,
    updatedAt: instant,
  })
  .meta({ id: 'Device' });

export const effectiveSettings = z
  .object({
    deviceId: id,
    values: z.record(z.string(), z.unknown()).meta({ description: 'The remote-tools settings in effect, merged in order' }),
    provenance: z.record(z.string(), z.unknown()).meta({ description: 'Which client settings set each value came from' }),
    versionHash: z.string(),
  })
  .meta({ id: 'EffectiveSettings' });

const principalKind = z.enum(['user', 'group', 'service']);
const principalRef = z.object({ id, name: z.string(), kind: principalKind });
export const principalView = z
  .object({ ...principalRef.shape, displayName: z.string().nullable(), disabled: z.boolean(), createdAt: instant, updatedAt: instant })
  .meta({ id: 'Principal' });
export const principalDetail = z
  .object({
    ...principalView.shape,
    groups: z.array(principalRef),
    allGroups: z.array(principalRef),
    members: z.array(principalRef).optional(),
  })
  .meta({ id: 'PrincipalDetail' });
export const groupMembership = z.object({ ...changedResult.shape, groupId: id, memberId: id }).meta({ id: 'GroupMembership' });

export const roleAssignmentView = z
  .object({
    id,
    principalId: id,
    principalName: z.string().nullable(),
    role: z.enum(ROLE_NAMES),
    collectionIds: z.array(id).nullable().meta({ description: 'null: every collection' }),
    createdAt: instant,
    updatedAt: instant,
  })
  .meta({ id: 'RoleAssignment' });

export const apiKeyView = z
  .object({
    id,
    principalId: id,
    name: z.string(),
    expiresAt: nullableInstant,
    revokedAt: nullableInstant,
    status: z.enum(['active', 'expired', 'revoked']),
    createdAt: instant,
  })
  .meta({ id: 'ApiKey' });
export const issuedApiKey = z
  .object({
    id,
    principalId: id,
    name: z.string(),
    expiresAt: nullableInstant,
    key: z.string().meta({ description: 'Shown once', example: 'rcf_3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30.s3cr3t' }),
  })
  .meta({ id: 'IssuedApiKey' });
export const revokedApiKey = z.object({ ...apiKeyView.shape, ...changedResult.shape }).meta({ id: 'RevokedApiKey' });

export const clientSettingsView = z
  .object({
    id,
    name: z.string(),
    isDefault: z.boolean(),
    order: z.int(),
    remoteTools: z.record(z.string(), z.unknown()).meta({ description: 'The remote-tools settings this set fixes' }),
    collectionIds: z.array(id),
    createdAt: instant,
    updatedAt: instant,
  })
  .meta({ id: 'ClientSettings' });
export const deployment = z.object({ ...changedResult.shape, settingsId: id, collectionId: id }).meta({ id: 'Deployment' });

export const enrolmentTokenView = z
  .object({
    id,
    hostname: z.string().nullable(),
    deviceId: id.nullable(),
    collectionId: id.nullable(),
    maxUses: z.int().min(1),
    uses: z.int().min(0),
    expiresAt: instant,
    revokedAt: nullableInstant,
    createdAt: instant,
  })
  .meta({ id: 'EnrolmentToken' });
export const issuedEnrolmentToken = z
  .object({
    id,
    token: z.string().meta({ description: 'Shown once' }),
    hostname: z.string().nullable(),
    deviceId: id.nullable(),
    collectionId: id.nullable(),
    maxUses: z.int().min(1),
    expiresAt: instant,
  })
  .meta({ id: 'IssuedEnrolmentToken' });
export const enrolled = z
  .object({ deviceId: id, credential: z.string().meta({ description: 'The device credential the agent connects with (shown once)' }) })
  .meta({ id: 'Enrolled' });

// Schedules.
export const scheduleTiming = z
  .looseObject({
    cron: z.string().optional().meta({ example: '0 9 * * 1-5' }),
    intervalMinutes: z.int().optional(),
    timeZone: z.string().optional().meta({ example: 'Europe/Amsterdam' }),
    startsAt: instant,
    endsAt: instant.optional(),
    windowMinutes: z.int().min(1),
    missedPolicy: z.enum(['skip', 'run_once']),
  })
  .meta({ id: 'ScheduleTiming' });

export const scheduleView = z
  .object({
    id,
    name: z.string(),
    ownerId: id,
    state: z.enum(['active', 'paused', 'ended', 'deleted']),
    timing: scheduleTiming,
    deviceIds: z.array(id).nullable(),
    collectionId: id.nullable(),
    viewerId: id.nullable(),
    type: z.enum(SESSION_TYPES),
    access: z.enum(ACCESS_MODES),
    reason: z.string().nullable(),
    ticketRef: z.string().nullable(),
    remindMinutes: z.int().nullable(),
    askApproval: z.boolean(),
    nextAt: nullableInstant,
    lastPlannedAt: nullableInstant,
    version: z.int().min(0),
    createdAt: instant,
    updatedAt: instant,
  })
  .meta({ id: 'Schedule' });

const previewedOccurrence = z.object({
  at: instant,
  local: z.string().meta({ description: "On the schedule's clock", example: '2026-03-02T10:30+01:00' }),
});
export const createdSchedule = z.object({ ...scheduleView.shape, upcoming: z.array(previewedOccurrence) }).meta({ id: 'CreatedSchedule' });
export const schedulePreview = z.object({
  timeZone: z.string().meta({ example: 'Europe/Amsterdam' }),
  items: z.array(previewedOccurrence),
});
export const scheduleRuns = z.object({
  items: z.array(
    z.object({
      at: instant,
      outcome: z.string().meta({ example: 'requested' }),
      reason: z.string().nullable(),
      targets: z.array(z.object({ deviceId: id, sessionId: id.nullable(), refused: z.string().nullable() })),
      decidedAt: instant,
    }),
  ),
  nextBefore: nullableInstant.meta({ description: 'Pass as `before` for older runs; null when there are none' }),
});

// Reports and access review (their rows depend on the report or the device: described loosely).
export const reportCatalogue = z
  .object({
    items: z.array(
      z.object({
        name: z.string().meta({ example: 'computers-by-user' }),
        title: z.string(),
        description: z.string(),
        params: z.array(
          z.object({ name: z.string(), type: z.string().meta({ example: 'date-time' }), required: z.boolean(), description: z.string() }),
        ),
      }),
    ),
  })
  .meta({ id: 'ReportCatalogue' });
export const reportResult = z
  .object({
    report: z.string().meta({ example: 'computers-by-user' }),
    title: z.string(),
    from: instant,
    to: instant,
    columns: z.array(z.record(z.string(), z.unknown())),
    rows: z.array(z.record(z.string(), z.unknown())),
  })
  .meta({ id: 'ReportResult', description: 'The report (JSON); CSV or NDJSON by format or Accept' });
export const accessCheck = z
  .looseObject({
    device: z.object({ id, hostname: z.string() }),
    principal: z.object({ id, name: z.string(), kind: z.string() }),
    type: z.enum(SESSION_TYPES),
    access: z.enum(ACCESS_MODES),
    canReach: z.boolean().meta({ description: 'The six standing checks pass: what the review lists' }),
    eligibleNow: z.boolean().meta({ description: 'All ten pass now, presence included' }),
    consentRule: z.string(),
    unattended: z.boolean(),
    checks: z.array(z.object({ ...checkResult.shape, standing: z.boolean() })),
  })
  .meta({ id: 'AccessCheck' });
export const accessReview = z
  .looseObject({})
  .meta({ id: 'AccessReview', description: 'Who may reach what, and through which grants and settings' });
export const principalReviewPage = z
  .looseObject({
    principal: principalRef,
    items: z.array(accessReview).meta({ description: 'Each device the principal can reach, with its entries and chains' }),
    nextCursor: z.string().nullable(),
  })
  .meta({ id: 'PrincipalReviewPage' });

// Ticket integrations.
export const ticketIntegration = z
  .object({
    id,
    name: z.string(),
    kind: z.string().meta({ example: 'jira' }),
    principalId: id,
    inboundAuth: z.enum(['hmac', 'token']),
    activeSecrets: z.int().min(0).meta({ description: 'How many inbound secrets are active (2 during a rotation)' }),
    webhookPath: z.string().meta({
      description: "Where deliveries go, relative to the API's base URL",
      example: '/v1/hooks/3f2a7c9e-1b4d-4e8a-9c6f-2d5e8b1a7f30',
    }),
    outbound: z.object({ url: z.string(), credentialFields: z.array(z.string()) }).nullable(),
    rules: z.array(z.record(z.string(), z.unknown())).meta({ description: 'The mapping rules, in order' }),
    enabled: z.boolean(),
    createdAt: instant,
    updatedAt: instant,
  })
  .meta({ id: 'TicketIntegration', description: 'A ticket integration (secrets are never returned after creation or rotation)' });
export const issuedTicketSecret = z
  .object({ ...ticketIntegration.shape, inboundSecret: z.string().meta({ description: 'Shown once' }) })
  .meta({ id: 'TicketIntegrationWithSecret' });
export const ticketDryRun = z
  .object({
    outcome: z.string(),
    reason: z.string().nullable(),
    rule: z.string().nullable(),
    ticketRef: z.string().nullable(),
    deviceId: id.nullable(),
    viewerId: id.nullable(),
    session: z.object({ type: z.string(), access: z.string(), reason: z.string().nullable() }).nullable(),
    eligibility: eligibilityDecision.nullable(),
  })
  .meta({ id: 'TicketDryRun' });
export const ticketDelivery = z
  .object({
    id: z.string(),
    receivedAt: instant,
    deliveryKey: z.string(),
    keySource: z.string(),
    first: z.boolean(),
    eventType: z.string().nullable(),
    signature: z.string(),
    outcome: z.string(),
    rule: z.string().nullable(),
    ticketRef: z.string().nullable(),
    deviceId: id.nullable(),
    viewerId: id.nullable(),
    sessionId: id.nullable(),
    reason: z.string().nullable(),
    statusCode: z.int(),
  })
  .meta({ id: 'TicketDelivery' });
export const ticketWriteback = z
  .object({
    id: z.string(),
    sessionId: id,
    ticketRef: z.string(),
    outcome: z.string(),
    state: z.enum(['pending', 'sent', 'dead', 'skipped']),
    attempts: z.int().min(0),
    redrives: z.int().min(0),
    lastError: z.string().nullable(),
    lastAttemptAt: nullableInstant,
    sentAt: nullableInstant,
    createdAt: instant,
  })
  .meta({ id: 'TicketWriteback' });
export const hookAnswer = z
  .object({ deliveryId: z.string(), outcome: z.string(), sessionId: id.nullable(), reason: z.string().nullable() })
  .meta({ id: 'HookAnswer', description: 'The delivery id and what became of it' });
export const identityView = z.object({ system: z.string(), externalId: z.string() }).meta({ id: 'ExternalIdentity' });

export const whoAmIView = z
  .object({
    principal: z.object({ id, name: z.string(), kind: z.string() }),
    groups: z.array(z.string()),
    grants: z.array(
      z.object({
        role: z.enum(ROLE_NAMES),
        collectionIds: z.array(id).nullable().meta({ description: 'null: every collection' }),
      }),
    ),
  })
  .meta({ id: 'WhoAmI' });

// Outbound webhooks.
export const webhookView = z
  .object({
    id,
    url: z.url(),
    eventTypes: z.array(z.string()).meta({ example: ['session.*'] }),
    collectionId: id.nullable(),
    enabled: z.boolean(),
    description: z.string().nullable(),
    previousSecretValidUntil: nullableInstant.meta({ description: 'After a rotation: until when the previous secret signs too' }),
    createdAt: instant,
    updatedAt: instant,
  })
  .meta({ id: 'Webhook' });
export const issuedWebhookSecret = webhookView
  .extend({ secret: z.string().meta({ description: 'whsec_…: shown this once', example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }) })
  .meta({ id: 'WebhookWithSecret' });
export const webhookDelivery = z
  .object({
    id,
    webhookId: id,
    eventId: z.string().nullable().meta({ description: 'The audit event told of (null for a test ping)' }),
    eventType: z.string(),
    status: z.enum(['pending', 'delivered', 'failed', 'dead']),
    attempts: z.int().min(0),
    redrives: z.int().min(0),
    nextAttemptAt: nullableInstant,
    lastStatusCode: z.int().nullable(),
    lastError: z.string().nullable(),
    deliveredAt: nullableInstant,
    createdAt: instant,
  })
  .meta({ id: 'WebhookDelivery' });
export const webhookAttempt = z
  .object({
    cycle: z.int().min(1),
    attempt: z.int().min(1),
    at: instant,
    durationMs: z.int().min(0),
    statusCode: z.int().nullable(),
    error: z.string().nullable(),
    responseExcerpt: z.string().nullable(),
  })
  .meta({ id: 'WebhookAttempt' });
export const webhookDeliveryDetail = webhookDelivery
  .extend({
    payload: z.object({ type: z.string(), timestamp: instant, data: z.record(z.string(), z.unknown()) }).meta({
      description: 'The body every attempt sends',
    }),
    attemptLog: z.array(webhookAttempt),
  })
  .meta({ id: 'WebhookDeliveryDetail' });
export const deletedResult = z.object({ deleted: z.literal(true) });

/**
 * Compile-time: each schema has exactly the fields of the view its service returns, so a field
 * added to one and not the other fails `npm run typecheck` (the e2e test checks the values).
 */
type SameKeys<S extends z.ZodType, V> = [Exclude<keyof z.output<S>, keyof V>, Exclude<keyof V, keyof z.output<S>>] extends [never, never]
  ? true
  : { onlyInSchema: Exclude<keyof z.output<S>, keyof V>; onlyInView: Exclude<keyof V, keyof z.output<S>> };
type Holds<T extends true> = T;
export type ViewsMatchSchemas = [
  Holds<SameKeys<typeof sessionView, SessionView>>,
  Holds<SameKeys<typeof eligibilityDecision, EligibilityDecision>>,
  Holds<SameKeys<typeof auditEvent, AuditItem>>,
  Holds<SameKeys<typeof auditVerification, AuditVerification>>,
  Holds<SameKeys<typeof collectionView, CollectionView>>,
  Holds<SameKeys<typeof collectionMembership, CollectionMembership>>,
  Holds<SameKeys<typeof deviceView, DeviceView>>,
  Holds<SameKeys<typeof principalView, PrincipalView>>,
  Holds<SameKeys<typeof principalDetail, PrincipalDetailView>>,
  Holds<SameKeys<typeof groupMembership, GroupMembership>>,
  Holds<SameKeys<typeof roleAssignmentView, RoleAssignmentView>>,
  Holds<SameKeys<typeof apiKeyView, ApiKeyView>>,
  Holds<SameKeys<typeof issuedApiKey, IssuedApiKey>>,
  Holds<SameKeys<typeof clientSettingsView, ClientSettingsView>>,
  Holds<SameKeys<typeof deployment, Deployment>>,
  Holds<SameKeys<typeof enrolmentTokenView, EnrolmentTokenView>>,
  Holds<SameKeys<typeof issuedEnrolmentToken, IssuedEnrolmentToken>>,
  Holds<SameKeys<typeof scheduleView, ScheduleView>>,
  Holds<SameKeys<typeof ticketIntegration, IntegrationView>>,
  Holds<SameKeys<typeof ticketDryRun, DryRunView>>,
  Holds<SameKeys<typeof ticketDelivery, DeliveryView>>,
  Holds<SameKeys<typeof ticketWriteback, WritebackView>>,
  Holds<SameKeys<typeof identityView, IdentityView>>,
  Holds<SameKeys<typeof whoAmIView, WhoAmIView>>,
  Holds<SameKeys<typeof webhookView, WebhookView>>,
  Holds<SameKeys<typeof issuedWebhookSecret, IssuedWebhookSecret>>,
  Holds<SameKeys<typeof webhookDelivery, WebhookDeliveryView>>,
  Holds<SameKeys<typeof webhookAttempt, WebhookAttemptView>>,
  Holds<SameKeys<typeof webhookDeliveryDetail, WebhookDeliveryDetail>>,
];
