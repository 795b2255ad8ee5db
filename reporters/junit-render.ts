/**
 * Renders a planned JUnit document with junit-report-builder, then makes what it wrote valid for every consumer
 * schema in ../shared/schemas at once (the project profile, Jenkins xUnit junit-10, Jenkins dtkit junit-4, and
 * Surefire for each suite taken alone). Their common subset decides the shape:
 * - `<testsuites>` without `skipped` (junit-10 and dtkit refuse it; the library always writes it);
 * - `<skipped>reason</skipped>`: the reason as text, never as a `message` attribute (dtkit refuses it) and never
 *   empty (the library can only write `<skipped/>`);
 * - no `flakyFailure`/`rerunFailure` (dtkit refuses them): the planner puts earlier attempts in `system-out`;
 * - CDATA sections for text holding any number of `]]>` (the library only splits the first one).
 * Each addition is left as an unforgeable token (a per-render nonce checked against every input text) at a place
 * the library writes verbatim, and replaced in its output. Pure: plan in, XML string out.
 */
import { randomBytes } from 'node:crypto';
import junitReportBuilderModule, { type Builder } from 'junit-report-builder';
import { escapeXmlText, splitCdataTerminators } from './sanitize.js';

// The package is CommonJS whose `module.exports` is a builder, typed as an ES default export: under NodeNext
// TypeScript sees the namespace. Accept either shape so Node and bundlers (vitest) both work.
const builderModule = junitReportBuilderModule as unknown as Builder | { default: Builder };
const rootBuilder: Builder = 'newBuilder' in builderModule ? builderModule : builderModule.default;

export interface OutcomeElement {
  /** CamelCase, e.g. `StepFailed`. */
  type: string;
  /** One line, 1..1024 characters. */
  message: string;
  /** Non-empty, at most 64 Ki characters. */
  body: string;
}

export interface CasePlan {
  name: string;
  classname: string;
  timeSeconds: number;
  failure?: OutcomeElement;
  error?: OutcomeElement;
  /** The reason a case was skipped or not run: the text of `<skipped>`, one line, non-empty. */
  skipped?: string;
  systemOut: string;
}

export interface SuitePlan {
  name: string;
  /** `YYYY-MM-DDTHH:MM:SS`, UTC. */
  timestamp: string;
  timeSeconds: number;
  properties: [string, string][];
  cases: CasePlan[];
}

/** Seconds with at most three decimals, never an exponent (a Number of this size prints plainly). */
export function junitSeconds(seconds: number): number {
  return Number.isFinite(seconds) && seconds > 0 ? Number(seconds.toFixed(3)) : 0;
}

function texts(suites: SuitePlan[]): string[] {
  return suites.flatMap((suite) => [
    suite.name,
    ...suite.properties.flat(),
    ...suite.cases.flatMap((c) => [
      c.name,
      c.classname,
      c.systemOut,
      ...[c.failure, c.error].flatMap((o) => (o ? [o.type, o.message, o.body] : [])),
      c.skipped ?? '',
    ]),
  ]);
}

function freshNonce(suites: SuitePlan[], matrixName: string): string {
  const all = [matrixName, ...texts(suites)];
  for (;;) {
    const nonce = randomBytes(8).toString('hex');
    if (!all.some((text) => text.includes(nonce))) return nonce;
  }
}

/** The root start tag as the library writes it, its `skipped` attribute apart (attribute values hold no `"`). */
const ROOT_SKIPPED = /^(<\?xml[^>]*\?>\s*<testsuites(?:\s+[\w.:-]+="[^"]*")*?)\s+skipped="\d+"/;

export function renderJunit(matrixName: string, suites: SuitePlan[]): string {
  const nonce = freshNonce(suites, matrixName);
  const open = `\ue000${nonce}:`;
  const cdataBreak = `${open}cdata\ue001`;
  // `]]>` becomes `]]TOKEN>`, and TOKEN later becomes `]]><![CDATA[`: `]]]]><![CDATA[>`, one split per occurrence.
  const protect = (text: string): string => splitCdataTerminators(text).join(cdataBreak);

  const builder = rootBuilder.newBuilder();
  builder.name(matrixName);
  const skips = new Map<number, string>();
  for (const plan of suites) {
    const suite = builder.testSuite().name(plan.name).timestamp(plan.timestamp).time(junitSeconds(plan.timeSeconds));
    for (const [name, value] of plan.properties) suite.property(name, value);
    for (const c of plan.cases) {
      const testCase = suite.testCase().className(c.classname).name(c.name).time(junitSeconds(c.timeSeconds));
      if (c.failure) testCase.failure(c.failure.message, c.failure.type).stacktrace(protect(c.failure.body));
      if (c.error) testCase.error(c.error.message, c.error.type, protect(c.error.body));
      let systemOut = protect(c.systemOut);
      if (c.skipped !== undefined) {
        testCase.skipped();
        // The library writes `<skipped/>` right before `<system-out>`: the token there says which case it is.
        const id = skips.size;
        skips.set(id, c.skipped);
        systemOut = `${open}${id}\ue001${systemOut}`;
      }
      if (systemOut !== '') testCase.standardOutput(systemOut);
    }
  }

  const escapedOpen = open.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const marker = new RegExp(`<skipped/>(\\s*)<system-out><!\\[CDATA\\[${escapedOpen}(\\d+)\\ue001`, 'g');
  const seen = new Set<number>();
  let xml = builder.build().replace(marker, (whole: string, space: string, idText: string) => {
    const id = Number(idText);
    const reason = skips.get(id);
    if (reason === undefined || seen.has(id)) return whole;
    seen.add(id);
    return `<skipped>${escapeXmlText(reason)}</skipped>${space}<system-out><![CDATA[`;
  });
  xml = xml.split(cdataBreak).join(']]><![CDATA[');
  const rootSkipped = ROOT_SKIPPED.exec(xml);
  if (rootSkipped) xml = `${rootSkipped[1]}${xml.slice(rootSkipped[0].length)}`;
  if (!rootSkipped || seen.size !== skips.size || xml.includes(open)) {
    throw new Error('junit reporter: junit-report-builder output did not have the expected shape (its version changed?)');
  }
  return xml;
}
