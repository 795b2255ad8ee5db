/**
 * A small, strict XML reader for result files: elements, attributes, text, CDATA, comments, processing
 * instructions and the five predefined entities plus character references. A DOCTYPE is skipped and never
 * expanded (no external entities, no entity bombs); depth and element count are bounded. Anything malformed
 * throws an XmlError with the line where it was found.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Text and CDATA directly inside the element, concatenated. */
  text: string;
}

export class XmlError extends Error {}

const MAX_DEPTH = 200;
const NAME_RE = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(text: string, lineOf: () => number): string {
  if (!text.includes('&')) return text;
  return text.replace(/&(#x[0-9A-Fa-f]+|#[0-9]+|[A-Za-z][A-Za-z0-9]*);?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new XmlError(`line ${lineOf()}: "&" not followed by an entity reference`);
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (!Number.isFinite(code) || code > 0x10ffff) throw new XmlError(`line ${lineOf()}: bad character reference ${whole}`);
      return String.fromCodePoint(code);
    }
    const value = ENTITIES[ref];
    if (value === undefined) throw new XmlError(`line ${lineOf()}: unknown entity ${whole}`);
    return value;
  });
}

export function parseXml(input: string, options: { maxElements?: number } = {}): XmlElement {
  const maxElements = options.maxElements ?? 2_000_000;
  let pos = 0;
  let elements = 0;
  const lineOf = () => {
    let line = 1;
    for (let i = input.indexOf('\n'); i !== -1 && i < pos; i = input.indexOf('\n', i + 1)) line++;
    return line;
  };
  const fail = (message: string): never => {
    throw new XmlError(`line ${lineOf()}: ${message}`);
  };
  const skipPast = (end: string, what: string) => {
    const at = input.indexOf(end, pos);
    if (at === -1) fail(`unterminated ${what}`);
    pos = at + end.length;
  };
  const readName = (): string => {
    NAME_RE.lastIndex = pos;
    const match = NAME_RE.exec(input);
    if (!match) return fail('expected a name');
    pos += match[0].length;
    return match[0];
  };
  const skipSpace = () => {
    while (pos < input.length && /\s/.test(input[pos]!)) pos++;
  };

  const stack: XmlElement[] = [];
  const texts: string[][] = [];
  let root: XmlElement | undefined;

  while (pos < input.length) {
    const lt = input.indexOf('<', pos);
    const textEnd = lt === -1 ? input.length : lt;
    if (textEnd > pos) {
      const text = input.slice(pos, textEnd);
      if (stack.length > 0) texts[texts.length - 1]!.push(decodeEntities(text, lineOf));
      else if (text.trim() !== '') fail('text outside the root element');
      pos = textEnd;
      if (lt === -1) break;
    }
    if (input.startsWith('<!--', pos)) skipPast('-->', 'comment');
    else if (input.startsWith('<![CDATA[', pos)) {
      if (stack.length === 0) fail('CDATA outside the root element');
      const start = pos + 9;
      skipPast(']]>', 'CDATA section');
      texts[texts.length - 1]!.push(input.slice(start, pos - 3));
    } else if (input.startsWith('<?', pos)) skipPast('?>', 'processing instruction');
    else if (input.startsWith('<!DOCTYPE', pos)) {
      // Skipped whole, internal subset included; entities it declares stay unknown (and are refused if used).
      const bracket = input.indexOf('[', pos);
      const close = input.indexOf('>', pos);
      if (bracket !== -1 && close !== -1 && bracket < close) skipPast(']>', 'DOCTYPE');
      else skipPast('>', 'DOCTYPE');
    } else if (input.startsWith('</', pos)) {
      pos += 2;
      const name = readName();
      skipSpace();
      if (input[pos] !== '>') fail(`bad end tag </${name}`);
      pos++;
      const open = stack.pop();
      if (!open || open.name !== name) fail(`end tag </${name}> does not match <${open?.name ?? '(none)'}>`);
      open!.text = texts.pop()!.join('');
    } else {
      pos++;
      const name = readName();
      const attrs: Record<string, string> = Object.create(null) as Record<string, string>;
      for (;;) {
        skipSpace();
        if (input.startsWith('/>', pos) || input[pos] === '>') break;
        if (pos >= input.length) fail(`unterminated start tag <${name}`);
        const attr = readName();
        skipSpace();
        if (input[pos] !== '=') fail(`attribute ${attr} without a value`);
        pos++;
        skipSpace();
        const quote = input[pos];
        if (quote !== '"' && quote !== "'") return fail(`attribute ${attr}: value not quoted`);
        const end = input.indexOf(quote, pos + 1);
        if (end === -1) fail(`attribute ${attr}: unterminated value`);
        const raw = input.slice(pos + 1, end);
        if (raw.includes('<')) fail(`attribute ${attr}: "<" in a value`);
        // Literal whitespace is normalised to spaces (XML's attribute-value normalisation); &#10; stays a newline.
        attrs[attr] = decodeEntities(raw.replace(/[\t\n\r]/g, ' '), lineOf);
        pos = end + 1;
      }
      if (++elements > maxElements) fail(`more than ${maxElements} elements`);
      const element: XmlElement = { name, attrs, children: [], text: '' };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(element);
      else if (root) fail('a second root element');
      else root = element;
      if (input.startsWith('/>', pos)) {
        pos += 2;
      } else {
        pos++;
        if (stack.length >= MAX_DEPTH) fail(`elements nested deeper than ${MAX_DEPTH}`);
        stack.push(element);
        texts.push([]);
      }
    }
  }
  if (stack.length > 0) fail(`unterminated element <${stack[stack.length - 1]!.name}>`);
  if (!root) throw new XmlError('no root element');
  return root;
}
