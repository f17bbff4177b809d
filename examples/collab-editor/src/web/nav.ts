/**
 * The header's link to the other page. It keeps who and where you are (`?region=`, `?name=`) so
 * that switching pages keeps you the same user in the same region; not `?doc=`, because the
 * pages edit different kinds of document (a Y.Text there, a Y.XmlFragment here).
 */
const CARRIED = ['region', 'name']

export const carryParams = (link: HTMLElement): void => {
  if (!(link instanceof HTMLAnchorElement)) return
  const here = new URLSearchParams(location.search)
  const target = new URL(link.href)
  for (const name of CARRIED) {
    const value = here.get(name)
    if (value !== null) target.searchParams.set(name, value)
  }
  link.href = target.toString()
}
