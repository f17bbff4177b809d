/** A markdown table, as every section of the bench's report writes one. */
export const table = (header: string[], rows: string[][]): string => [
  `| ${header.join(' | ')} |`,
  `|${header.map(() => '---').join('|')}|`,
  ...rows.map(r => `| ${r.join(' | ')} |`),
].join('\n')
