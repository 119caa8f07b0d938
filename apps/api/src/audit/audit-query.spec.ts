import { auditScopeSql, auditScopeSqlLiterals } from './audit-query';

describe('auditScopeSql', () => {
  it('adds nothing for a caller over all collections: the list keeps the statement BENCHMARKS.md measured', () => {
    const p = jest.fn(() => '$9');
    expect(auditScopeSql(null, p)).toEqual([]);
    expect(auditScopeSqlLiterals(null)).toEqual([]);
    expect(p).not.toHaveBeenCalled();
  });

  it('keeps a scoped caller to events about a device in its collections, through the one scope rule', () => {
    const scope = ['0b7f2c1e-0000-4000-8000-000000000001', '0b7f2c1e-0000-4000-8000-000000000002'];
    const p = jest.fn(() => '$3');
    const sql = auditScopeSql(scope, p);
    expect(p).toHaveBeenCalledWith(scope);
    expect(sql[0]).toBe('audit_events.device_id IS NOT NULL');
    // Qualified: inside the rule's subquery a bare device_id would be the membership's own column.
    expect(sql[1]).toContain('sm.device_id = audit_events.device_id');
    expect(sql[1]).toContain('ANY($3::uuid[])');
    expect(auditScopeSqlLiterals(scope)[1]).toContain(`ANY('{${scope.join(',')}}'::uuid[])`);
    expect(auditScopeSqlLiterals([])[1]).toContain(`ANY('{}'::uuid[])`);
  });
});
