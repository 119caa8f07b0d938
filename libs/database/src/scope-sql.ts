/**
 * The scope rule of libs/domain (`scopeOf`: null covers every device, even one in no collection;
 * a list covers the members of those collections) rendered to SQL, here and nowhere else: true
 * when the device in `deviceColumn` is covered by `scopeExpr`, a uuid[] SQL expression whose NULL
 * means unrestricted (for statements that carry a scope per row).
 */
export function deviceInScopeExprSql(deviceColumn: string, scopeExpr: string): string {
  return `(${scopeExpr} IS NULL OR EXISTS (SELECT 1 FROM collection_members sm
            WHERE sm.device_id = ${deviceColumn} AND sm.collection_id = ANY(${scopeExpr})))`;
}

/**
 * `deviceInScopeExprSql` for one scope known when the statement is built. `p` appends a parameter
 * and returns its placeholder.
 */
export function deviceInScopeSql(deviceColumn: string, scope: readonly string[] | null, p: (value: unknown) => string): string {
  if (scope === null) return 'TRUE';
  return deviceInScopeExprSql(deviceColumn, `${p(scope)}::uuid[]`);
}
