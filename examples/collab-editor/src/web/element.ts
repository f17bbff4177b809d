/** Builds DOM elements from data with textContent only, so no name or text is ever parsed as HTML. */

type Child = Node | string | null | false

export const el = (tag: string, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElement => {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined) node.setAttribute(name, value)
  for (const child of children) if (child !== null && child !== false) node.append(child)
  return node
}

/** Replaces the element's children. */
export const fill = (parent: Element, ...children: Child[]): void => {
  parent.replaceChildren(...children.filter((c): c is Node | string => c !== null && c !== false))
}

/** The page's element with that id; the markup and the script ship together, so a missing one is a bug. */
export const byId = (id: string): HTMLElement => {
  const node = document.getElementById(id)
  if (node === null) throw new Error(`the page has no #${id}`)
  return node
}
