import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseDeb822Sources, parseOneLineSources, pickMirrors, readHostAptSources } from '../../src/images/apt-sources.js';

const DEB822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb deb-src
URIs: http://mirror.example/debian-security/
Suites: bookworm-security
Components: main
 contrib

Types: deb
Enabled: no
URIs: http://disabled.example/debian
Suites: sid
Components: main
`;

describe('apt sources', () => {
  it('parses deb822 stanzas, continuation lines and Enabled: no', () => {
    expect(parseDeb822Sources(DEB822)).toEqual([
      { types: ['deb'], uris: ['http://mirror.example/debian'], suites: ['bookworm', 'bookworm-updates'], components: ['main'] },
      {
        types: ['deb', 'deb-src'],
        uris: ['http://mirror.example/debian-security/'],
        suites: ['bookworm-security'],
        components: ['main', 'contrib'],
      },
    ]);
  });

  it('parses one-line sources with options and comments', () => {
    const text = '# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m/debian bookworm main contrib\ndeb-src http://m/debian bookworm main\ndeb http://s/debian-security bookworm/updates main # old style\n';
    expect(parseOneLineSources(text)).toEqual([
      { types: ['deb'], uris: ['http://m/debian'], suites: ['bookworm'], components: ['main', 'contrib'] },
      { types: ['deb-src'], uris: ['http://m/debian'], suites: ['bookworm'], components: ['main'] },
      { types: ['deb'], uris: ['http://s/debian-security'], suites: ['bookworm/updates'], components: ['main'] },
    ]);
  });

  it('picks the main archive and the security archive', () => {
    expect(pickMirrors(parseDeb822Sources(DEB822))).toEqual({
      main: 'http://mirror.example/debian',
      security: 'http://mirror.example/debian-security',
    });
    expect(pickMirrors([])).toEqual({ main: undefined, security: undefined });
  });

  const root = mkdtempSync(join(tmpdir(), 'nsmatrix-apt-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('reads sources.list and sources.list.d/*.{list,sources} of a directory', () => {
    mkdirSync(join(root, 'sources.list.d'));
    writeFileSync(join(root, 'sources.list'), 'deb http://one/debian trixie main\n');
    writeFileSync(join(root, 'sources.list.d', 'b.sources'), DEB822);
    writeFileSync(join(root, 'sources.list.d', 'a.list'), 'deb http://two/debian sid main\n');
    writeFileSync(join(root, 'sources.list.d', 'ignored.save'), 'deb http://three/debian sid main\n');
    const uris = readHostAptSources(root).map((s) => s.uris[0]);
    expect(uris).toEqual(['http://one/debian', 'http://two/debian', 'http://mirror.example/debian', 'http://mirror.example/debian-security/']);
  });
});
