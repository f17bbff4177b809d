/**
 * Connection strings carry passwords; nothing a relay prints (logs, errors, /v1/regions) may.
 * `redactUrl` removes the password of `url` from a text, and any `user:password@` of a
 * postgres URL in it.
 */
const safeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(a connection string)'
  }
}

/** The URL with its password replaced by `***`, fit to show. */
export const describeUrl = (url: string): string => safeUrl(url)

export const redactUrl = (text: string, url?: string): string => {
  let out = text
  if (url !== undefined) {
    out = out.split(url).join(safeUrl(url))
    try {
      const password = decodeURIComponent(new URL(url).password)
      if (password.length >= 4) out = out.split(password).join('***')
    } catch { /* not a URL: nothing more to remove */ }
  }
  return out.replace(/(postgres(?:ql)?:\/\/[^:/@\s]+):[^@\s]+@/g, '$1:***@')
}
