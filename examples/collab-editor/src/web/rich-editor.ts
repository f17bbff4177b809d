/**
 * The rich-text editor: Tiptap's StarterKit on the Y.XmlFragment 'default' of the document
 * (Collaboration's default field), with every other user's caret and name from the provider's
 * awareness (CollaborationCaret).
 */
import type * as Y from 'yjs'
import { Editor } from '@tiptap/core'
import { StarterKit } from '@tiptap/starter-kit'
import { Collaboration } from '@tiptap/extension-collaboration'
import { CollaborationCaret } from '@tiptap/extension-collaboration-caret'
import type { HocuspocusProvider } from '@hocuspocus/provider'
import type { Identity } from './identity.js'

export interface RichEditorOptions {
  element: HTMLElement
  doc: Y.Doc
  provider: HocuspocusProvider
  identity: Identity
}

export const mountRichEditor = ({ element, doc, provider, identity }: RichEditorOptions): Editor => new Editor({
  element,
  extensions: [
    // StarterKit's history would undo other people's edits too; Collaboration brings Yjs's
    // undo, which undoes only this tab's.
    StarterKit.configure({ undoRedo: false }),
    Collaboration.configure({ document: doc }),
    CollaborationCaret.configure({ provider, user: { name: identity.name, color: identity.color } }),
  ],
  editorProps: { attributes: { 'data-testid': 'editor', 'aria-label': 'rich text document' } },
})
