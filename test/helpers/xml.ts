// A strict, small well-formedness check for the XML the server writes itself
// (the SVG charts of the admin console): one root element, every tag closed
// in order, attributes quoted and not repeated, `<` never in text or values,
// `&` only as an entity. No DOCTYPE, comment, CDATA or processing instruction
// is accepted (we write none). Returns the root element and its attributes.
import assert from 'node:assert/strict';

export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  /** The text of the element's direct and nested children, entities decoded. */
  text: string;
}

const NAME = '[A-Za-z_][\\w:.-]*';
const TAG = new RegExp(`<(/?)(${NAME})((?:\\s+${NAME}\\s*=\\s*(?:"[^"<]*"|'[^'<]*'))*)\\s*(/?)>`, 'y');
const ATTRIBUTE = new RegExp(`(${NAME})\\s*=\\s*(?:"([^"<]*)"|'([^'<]*)')`, 'g');
const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;

function decode(text: string): string {
  return text
    .replace(/&#x([0-9a-fA-F]+);/g, (_, h: string) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

function checkAmpersands(text: string, where: string): void {
  for (let i = text.indexOf('&'); i !== -1; i = text.indexOf('&', i + 1)) {
    ENTITY.lastIndex = i;
    assert.ok(ENTITY.test(text), `${where}: a bare & at ${i}: ${JSON.stringify(text.slice(i, i + 12))}`);
  }
}

/** Asserts `xml` is one well-formed element (see above); its root. */
export function parseXmlRoot(xml: string): XmlElement & { elements: XmlElement[] } {
  const source = xml.trim();
  const stack: Array<XmlElement & { start: number }> = [];
  const elements: XmlElement[] = [];
  let root: (XmlElement & { start: number }) | undefined;
  let i = 0;
  while (i < source.length) {
    const lt = source.indexOf('<', i);
    const chunk = source.slice(i, lt === -1 ? source.length : lt);
    if (chunk.trim() !== '') {
      assert.ok(stack.length > 0, `text outside the root element: ${JSON.stringify(chunk.slice(0, 40))}`);
      assert.ok(!chunk.includes('>'), `a bare > in text: ${JSON.stringify(chunk.slice(0, 40))}`);
      checkAmpersands(chunk, 'text');
      for (const open of stack) open.text += decode(chunk);
    }
    if (lt === -1) break;
    TAG.lastIndex = lt;
    const m = TAG.exec(source);
    assert.ok(m, `a malformed tag at ${lt}: ${JSON.stringify(source.slice(lt, lt + 60))}`);
    const [whole, closing, name, attrs, selfClosing] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
    ];
    if (closing) {
      assert.equal(attrs.trim(), '', `attributes on the closing tag </${name}>`);
      assert.equal(selfClosing, '', `</${name}/>`);
      const open = stack.pop();
      assert.ok(open, `</${name}> closes nothing`);
      assert.equal(name, open.name, `</${name}> closes <${open.name}>`);
    } else {
      assert.ok(stack.length > 0 || !root, `a second root element <${name}>`);
      const attributes: Record<string, string> = {};
      for (const a of attrs.matchAll(ATTRIBUTE)) {
        const key = a[1] as string;
        const value = a[2] ?? a[3] ?? '';
        assert.ok(!(key in attributes), `<${name}> repeats the attribute ${key}`);
        checkAmpersands(value, `<${name} ${key}>`);
        attributes[key] = decode(value);
      }
      const element = { name, attributes, text: '', start: lt };
      elements.push(element);
      if (!root) root = element;
      if (!selfClosing) stack.push(element);
    }
    i = lt + whole.length;
  }
  assert.equal(stack.length, 0, `unclosed: ${stack.map((e) => `<${e.name}>`).join(' ')}`);
  assert.ok(root, 'no element at all');
  return { name: root.name, attributes: root.attributes, text: root.text, elements };
}
