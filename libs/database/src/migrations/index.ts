import { Init1795551796619 } from './1795551796619-Init';
import { AuditAppendOnly1795551796700 } from './1795551796700-AuditAppendOnly';
import { DefaultClientSettings1795551796800 } from './1795551796800-DefaultClientSettings';
import { CaseInsensitiveNames1795551796900 } from './1795551796900-CaseInsensitiveNames';
import { AgentChannel1795553106657 } from './1795553106657-AgentChannel';
import { SessionRequeues1795554095905 } from './1795554095905-SessionRequeues';
import { FailFunction1795600000000 } from './1795600000000-FailFunction';
import { AuditIndexesById1795610000000 } from './1795610000000-AuditIndexesById';
import { EnrolmentTokenScope1795620000000 } from './1795620000000-EnrolmentTokenScope';
import { TicketTriggers1795700000000 } from './1795700000000-TicketTriggers';
import { TicketWritebacks1795800000000 } from './1795800000000-TicketWritebacks';
import { ScheduledSessions1795900000000 } from './1795900000000-ScheduledSessions';
import { SessionTicketOrigin1795910000000 } from './1795910000000-SessionTicketOrigin';
import { Schedules1796000000000 } from './1796000000000-Schedules';
import { ReportIndexes1796200000000 } from './1796200000000-ReportIndexes';
import { ReportRollups1796300000000 } from './1796300000000-ReportRollups';
import { Webhooks1796400000000 } from './1796400000000-Webhooks';

/** Every migration, in order. Generate new ones with `npm run migration:generate -- Name`. */
export const MIGRATIONS = [
  Init1795551796619,
  AuditAppendOnly1795551796700,
  DefaultClientSettings1795551796800,
  CaseInsensitiveNames1795551796900,
  AgentChannel1795553106657,
  SessionRequeues1795554095905,
  FailFunction1795600000000,
  AuditIndexesById1795610000000,
  EnrolmentTokenScope1795620000000,
  TicketTriggers1795700000000,
  TicketWritebacks1795800000000,
  ScheduledSessions1795900000000,
  SessionTicketOrigin1795910000000,
  Schedules1796000000000,
  ReportIndexes1796200000000,
  ReportRollups1796300000000,
  Webhooks1796400000000,
];
