/**
 * Renders a planned JUnit document with junit-report-builder, and adds what that library cannot emit:
 * `<skipped message="…">reason</skipped>`, Surefire's `flakyFailure`/`rerunFailure`, and CDATA sections for
 * text holding any number of `]]>` (the library only splits the first one). Each of those is left as an
 * unforgeable token (a per-render nonce checked against every input text) at a place the library writes
 * verbatim, and replaced in its output. Pure: plan in, XML string out.
 */
import { randomBytes } from 'node:crypto';
import junitReportBuilderModule, { type Builder } from 'junit-report-builder';
import { escapeXmlAttribute, escapeXmlText, splitCdataTerminators } from './sanitize.js';

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

export interface RerunElement extends OutcomeElement {
  element: 'flakyFailure' | 'rerunFailure';
}

export interface CasePlan {
  name: string;
  classname: string;
  timeSeconds: number;
  failure?: OutcomeElement;
  error?: OutcomeElement;
  skipped?: { message: string; text: string };
  /** Earlier attempts: `flakyFailure` on a passing case, `rerunFailure` after a `failure`. */
  reruns: RerunElement[];
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
      ...[c.failure, c.error, ...c.reruns].flatMap((o) => (o ? [o.type, o.message, o.body] : [])),
      c.skipped?.message ?? '',
      c.skipped?.text ?? '',
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

function rerunXml(rerun: RerunElement): string {
  return (
    `<${rerun.element} message="${escapeXmlAttribute(rerun.message)}" type="${escapeXmlAttribute(rerun.type)}">` +
    `<stackTrace>${escapeXmlText(rerun.body)}</stackTrace></${rerun.element}>`
  );
}

export function renderJunit(matrixName: string, suites: SuitePlan[]): string {
  const nonce = freshNonce(suites, matrixName);
  const open = `\ue000${nonce}:`;
  const cdataBreak = `${open}cdata\ue001`;
  // `]]>` becomes `]]TOKEN>`, and TOKEN later becomes `]]><![CDATA[`: `]]]]><![CDATA[>`, one split per occurrence.
  const protect = (text: string): string => splitCdataTerminators(text).join(cdataBreak);

  const builder = rootBuilder.newBuilder();
  builder.name(matrixName);
  const extras = new Map<number, CasePlan>();
  for (const plan of suites) {
    const suite = builder.testSuite().name(plan.name).timestamp(plan.timestamp).time(junitSeconds(plan.timeSeconds));
    for (const [name, value] of plan.properties) suite.property(name, value);
    for (const c of plan.cases) {
      const testCase = suite.testCase().className(c.classname).name(c.name).time(junitSeconds(c.timeSeconds));
      if (c.failure) testCase.failure(c.failure.message, c.failure.type).stacktrace(protect(c.failure.body));
      if (c.error) testCase.error(c.error.message, c.error.type, protect(c.error.body));
      if (c.skipped) testCase.skipped();
      let systemOut = protect(c.systemOut);
      if (c.skipped || c.reruns.length > 0) {
        const id = extras.size;
        extras.set(id, c);
        systemOut = `${open}${id}\ue001${systemOut}`;
      }
      if (systemOut !== '') testCase.standardOutput(systemOut);
    }
  }

  const escapedOpen = open.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const marker = new RegExp(`(<skipped/>)?(\\s*)<system-out><!\\[CDATA\\[${escapedOpen}(\\d+)\\ue001`, 'g');
  const seen = new Set<number>();
  let xml = builder.build().replace(marker, (whole: string, skippedTag: string | undefined, space: string, idText: string) => {
    const id = Number(idText);
    const plan = extras.get(id);
    if (!plan || seen.has(id)) return whole;
    seen.add(id);
    const elements: string[] = [];
    if (plan.skipped) {
      if (skippedTag === undefined) return whole;
      elements.push(`<skipped message="${escapeXmlAttribute(plan.skipped.message)}">${escapeXmlText(plan.skipped.text)}</skipped>`);
    } else if (skippedTag !== undefined) {
      elements.push(skippedTag);
    }
    elements.push(...plan.reruns.map(rerunXml));
    // A leading `<skipped/>` had its indentation before the match; otherwise it is in `space`.
    return `${skippedTag === undefined ? space : ''}${elements.join(space)}${space}<system-out><![CDATA[`;
  });
  xml = xml.split(cdataBreak).join(']]><![CDATA[');
  if (seen.size !== extras.size || xml.includes(open)) {
    throw new Error('junit reporter: junit-report-builder output did not have the expected shape (its version changed?)');
  }
  return xml;
}
