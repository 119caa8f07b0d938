import { chainText, type AccessEntry } from '@rcflow/domain';
import type { DeviceLine } from './access-review.service';

export const CSV_HEADER = 'device_id,hostname,principal_id,principal_name,principal_kind,session_type,access,chain\r\n';

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a leading =, +, -, @,
 * tab or carriage return is prefixed with an apostrophe so that a spreadsheet shows it as text
 * rather than running it as a formula (names come from directories and devices).
 */
export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The rows of one device: one per principal and session type. */
export function csvRows(line: DeviceLine): string {
  return line.entries
    .map(
      (e: AccessEntry) =>
        [
          line.device.id,
          line.device.hostname,
          e.principal.id,
          e.principal.name,
          e.principal.kind,
          e.sessionType,
          e.access,
          chainText(e.via),
        ]
          .map(csvField)
          .join(',') + '\r\n',
    )
    .join('');
}
