/**
 * The scope rule of libs/domain (`scopeOf`: null covers every device, even one in no collection;
 * a list covers the members of those collections) rendered to SQL, here and nowhere else: true
 * when the device in `deviceColumn` is covered. `p` appends a parameter and returns its placeholder.
 */
export function deviceInScopeSql(deviceColumn: string, scope: readonly string[] | null, p: (value: unknown) => string): string {
  if (scope === null) return 'TRUE';
  return `EXISTS (SELECT 1 FROM collection_members sm WHERE sm.device_id = ${deviceColumn} AND sm.collection_id = ANY(${p(scope)}::uuid[]))`;
}
