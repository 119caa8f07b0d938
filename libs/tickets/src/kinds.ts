/** The ticket systems rcflow takes deliveries from. */
export const TICKET_KINDS = ['jira', 'servicenow', 'zendesk', 'freshservice', 'freshdesk', 'github', 'generic'] as const;
export type TicketKind = (typeof TICKET_KINDS)[number];

/** Where an assignee's id comes from, matched to a principal's external identity of the same system. */
export const IDENTITY_SYSTEMS = ['jira', 'servicenow', 'zendesk', 'freshservice', 'freshdesk', 'github', 'email'] as const;
export type IdentitySystem = (typeof IDENTITY_SYSTEMS)[number];
