/** Who this tab is in the editor: a name and a colour, from `?name=` or drawn at random. */

export interface Identity {
  name: string
  /** The cursor's colour, and a translucent one for the selection (what y-codemirror.next reads). */
  color: string
  colorLight: string
}

const NAMES = ['Ada', 'Grace', 'Alan', 'Barbara', 'Edsger', 'Margaret', 'Donald', 'Frances', 'Ken', 'Radia', 'Leslie', 'Hedy']
const COLOURS = ['#1f8fd1', '#d1461f', '#2e9e4f', '#a23fc4', '#c48a00', '#00897b', '#d81b60', '#5c6bc0']

const hash = (text: string): number =>
  [...text].reduce((h, c) => Math.imul(h ^ c.charCodeAt(0), 16777619) >>> 0, 2166136261)

export const identityFor = (requested: string | null): Identity => {
  const name = requested?.trim().slice(0, 24) || (NAMES[Math.floor(Math.random() * NAMES.length)] as string)
  const color = COLOURS[hash(name) % COLOURS.length] as string
  return { name, color, colorLight: `${color}33` }
}
