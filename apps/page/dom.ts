/** DOM helpers the page's cards share. */

/** The element with this id: index.html has them all, so a missing one is a bug. */
export function $<T extends HTMLElement = HTMLElement> (id: string): T {
  const node = document.getElementById(id)
  if (node == null) {
    throw new Error(`#${id} missing`)
  }
  return node as T
}

export function el<K extends keyof HTMLElementTagNameMap> (tag: K, className = '', text = ''): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  node.className = className
  node.textContent = text
  return node
}

/** Sets text only when it changed: an unchanged write still costs style and layout. */
export function setText (node: HTMLElement, text: string): void {
  if (node.textContent !== text) {
    node.textContent = text
  }
}

/** A peer id as shown: its start and end; the full id goes in the title. */
export function short (id: string): string {
  return id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id
}

/** A peer id's end, where there is room for little more. */
export function tail (id: string): string {
  return `…${id.slice(-6)}`
}
