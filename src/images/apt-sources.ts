/** The host's apt sources (deb822 `.sources` files and one-line `sources.list`), parsed purely. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mirrorUrlProblem } from '../matrix/schema.js';

export interface AptSource {
  types: string[];
  uris: string[];
  suites: string[];
  components: string[];
}

function stripComment(line: string): string {
  return line.startsWith('#') ? '' : line;
}

/** deb822 stanzas (sources.list(5)): blank-line separated, `Field: value`, continuation lines indented. */
export function parseDeb822Sources(text: string): AptSource[] {
  const result: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      const line = stripComment(raw);
      if (!line.trim()) continue;
      if (/^\s/.test(line) && last) {
        fields.set(last, `${fields.get(last) ?? ''} ${line.trim()}`);
        continue;
      }
      const match = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (!match) continue;
      last = match[1]!.toLowerCase();
      fields.set(last, match[2]!.trim());
    }
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (key: string) => (fields.get(key) ?? '').split(/\s+/).filter(Boolean);
    const source = { types: words('types'), uris: words('uris'), suites: words('suites'), components: words('components') };
    if (source.types.length && source.uris.length && source.suites.length) result.push(source);
  }
  return result;
}

/** One-line format: `deb [options] URI SUITE COMPONENT...`. */
export function parseOneLineSources(text: string): AptSource[] {
  const result: AptSource[] = [];
  for (const raw of text.split('\n')) {
    // Options come right after the type; a "[" anywhere else is part of a field (and makes its URI invalid).
    const line = raw.replace(/#.*$/, '').trim().replace(/^(\S+)\s+\[[^\]]*\]/, '$1 ');
    const [type, uri, suite, ...components] = line.split(/\s+/);
    if (!type || !uri || !suite || (type !== 'deb' && type !== 'deb-src')) continue;
    result.push({ types: [type], uris: [uri], suites: [suite], components });
  }
  return result;
}

export function readHostAptSources(root = '/etc/apt'): AptSource[] {
  const sources: AptSource[] = [];
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  sources.push(...parseOneLineSources(read(join(root, 'sources.list'))));
  let entries: string[];
  try {
    entries = readdirSync(join(root, 'sources.list.d')).sort();
  } catch {
    entries = [];
  }
  for (const entry of entries) {
    const path = join(root, 'sources.list.d', entry);
    if (entry.endsWith('.sources')) sources.push(...parseDeb822Sources(read(path)));
    else if (entry.endsWith('.list')) sources.push(...parseOneLineSources(read(path)));
  }
  return sources;
}

/** A source's URI as a mirror: without trailing slashes, and only when it is a mirror URL `mirror:` would accept. */
function mirrorOf(source: AptSource): string | undefined {
  const uri = source.uris[0]?.replace(/\/+$/, '');
  return uri !== undefined && mirrorUrlProblem(uri) === undefined ? uri : undefined;
}

/**
 * The distribution's main archive among the host's sources: a `deb` source whose suites are not security or
 * updates pockets. The security archive is the one whose suites end in `-security` (or `/updates`). Sources whose
 * URI is no valid mirror URL (cdrom:, tor+http:, anything that would change the image's sources lines) are skipped.
 */
export function pickMirrors(sources: AptSource[]): { main?: string; security?: string } {
  const debs = sources.filter((s) => s.types.includes('deb') && mirrorOf(s) !== undefined);
  const isSecurity = (s: AptSource) => s.suites.some((x) => /-security$|\/updates$/.test(x));
  const main = debs.find((s) => !isSecurity(s) && s.suites.some((x) => !x.includes('-')));
  const security = debs.find(isSecurity);
  return { main: main && mirrorOf(main), security: security && mirrorOf(security) };
}
