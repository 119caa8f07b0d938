import { ApiKey } from './api-key.entity';
import { AuditEvent } from './audit-event.entity';
import { AuditStreamHead } from './audit-stream-head.entity';
import { ClientSettings } from './client-settings.entity';
import { Collection } from './collection.entity';
import { CollectionMember } from './collection-member.entity';
import { ReportRollup, ReportRollupWatermark } from './report-rollup.entity';
import { Device } from './device.entity';
import { DeviceCredential } from './device-credential.entity';
import { EnrolmentToken } from './enrolment-token.entity';
import { ViewerToken } from './viewer-token.entity';
import { EligibilityDecisionRow } from './eligibility-decision.entity';
import { GroupMember } from './group-member.entity';
import { IdempotencyKey } from './idempotency-key.entity';
import { OutboxRow } from './outbox.entity';
import { Principal } from './principal.entity';
import { RoleAssignment } from './role-assignment.entity';
import { Schedule } from './schedule.entity';
import { ScheduleOccurrence, OccurrenceTarget } from './schedule-occurrence.entity';
import { Session } from './session.entity';
import { SessionNotice } from './session-notice.entity';
import { SettingsDeployment } from './settings-deployment.entity';
import { PrincipalIdentity } from './principal-identity.entity';
import { TicketDelivery } from './ticket-delivery.entity';
import { TicketIntegration } from './ticket-integration.entity';
import { TicketWriteback } from './ticket-writeback.entity';
import { WebhookCursor } from './webhook-cursor.entity';
import { WebhookDelivery } from './webhook-delivery.entity';
import { WebhookDeliveryAttempt } from './webhook-delivery-attempt.entity';
import { WebhookSubscription } from './webhook-subscription.entity';

export {
  ApiKey,
  AuditEvent,
  AuditStreamHead,
  ClientSettings,
  Collection,
  CollectionMember,
  ReportRollup,
  ReportRollupWatermark,
  Device,
  DeviceCredential,
  EligibilityDecisionRow,
  EnrolmentToken,
  GroupMember,
  IdempotencyKey,
  OutboxRow,
  Principal,
  PrincipalIdentity,
  RoleAssignment,
  Schedule,
  ScheduleOccurrence,
  Session,
  SessionNotice,
  SettingsDeployment,
  TicketDelivery,
  TicketIntegration,
  TicketWriteback,
  ViewerToken,
  WebhookCursor,
  WebhookDelivery,
  WebhookDeliveryAttempt,
  WebhookSubscription,
};
export type { OccurrenceTarget };

export const ENTITIES = [
  ApiKey,
  AuditEvent,
  AuditStreamHead,
  ClientSettings,
  Collection,
  CollectionMember,
  ReportRollup,
  ReportRollupWatermark,
  Device,
  DeviceCredential,
  EligibilityDecisionRow,
  EnrolmentToken,
  GroupMember,
  IdempotencyKey,
  OutboxRow,
  Principal,
  PrincipalIdentity,
  RoleAssignment,
  Schedule,
  ScheduleOccurrence,
  Session,
  SessionNotice,
  SettingsDeployment,
  TicketDelivery,
  TicketIntegration,
  TicketWriteback,
  ViewerToken,
  WebhookCursor,
  WebhookDelivery,
  WebhookDeliveryAttempt,
  WebhookSubscription,
];
