/**
 * TAP 12, 13 and 14: plans, test points with directives (`# SKIP`, `# TODO`), YAML diagnostics (`message:`),
 * `Bail out!`, and subtests: TAP 14's indented blocks (`# Subtest: name` or none) and node-tap's TAP 13 style.
 * A test point with subtests stands for its leaves (named `parent > child` through the suite); the parent itself
 * appears only when it failed while none of its subtests did.
 */
import { makeTest, type ParseOutcome, type TestOutcome, type TestResult } from './types.js';

const TEST_RE = /^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$/;
const PLAN_RE = /^1\.\.(\d+)\s*(?:#\s*(.*))?$/;
const DIRECTIVE_RE = /(?:^|[^\\])#\s*(SKIP|TODO)\S*\s*(.*)$/i;

interface Point {
  ok: boolean;
  name: string;
  directive?: 'skip' | 'todo';
  reason: string;
  yaml: string[];
  /** The leaf test made from this point, completed by its YAML block when one follows. */
  test?: TestResult;
}

interface Level {
  points: Point[];
  /** Tests of this level that are complete (relative suites). */
  done: TestResult[];
  /** Leaves collected from finished subtest blocks, waiting for the parent's test point. */
  pendingChildren: TestResult[];
  subtestName?: string | undefined;
  /** The name of the subtest block that just closed into this level (for a parent point without description). */
  childName?: string | undefined;
  plan?: number;
  bailedOut?: string;
}

function outcomeOf(point: Point): TestOutcome {
  if (point.directive === 'skip') return 'skipped';
  if (point.directive === 'todo') return point.ok ? 'passed' : 'skipped';
  return point.ok ? 'passed' : 'failed';
}

function yamlMessage(yaml: string[]): string | undefined {
  for (const line of yaml) {
    const match = /^\s*(message|msg|error):\s*(.*)$/.exec(line);
    if (match && match[2]!.trim() !== '') return match[2]!.trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return undefined;
}

export function parseTap(text: string): ParseOutcome {
  const warnings: string[] = [];
  const levels: Level[] = [{ points: [], done: [], pendingChildren: [] }];
  let yamlFor: { point: Point; indent: number } | undefined;
  let sawTap = false;
  let nextSubtestName: string | undefined;

  const open = (depth: number) => {
    while (levels.length - 1 < depth) {
      const level: Level = { points: [], done: [], pendingChildren: [] };
      if (nextSubtestName !== undefined) level.subtestName = nextSubtestName;
      nextSubtestName = undefined;
      levels.push(level);
    }
  };
  /** Closes deeper levels; their tests wait in the parent level for the parent's test point. */
  const closeTo = (depth: number) => {
    while (levels.length - 1 > depth) {
      const level = levels.pop()!;
      if (level.plan !== undefined && level.plan !== level.points.length && level.bailedOut === undefined) {
        warnings.push(`subtest "${level.subtestName ?? ''}": plan 1..${level.plan} but ${level.points.length} test points`);
      }
      const parent = levels[levels.length - 1]!;
      parent.pendingChildren.push(...level.done, ...level.pendingChildren);
      parent.childName = level.subtestName;
    }
  };
  /** A test point at `depth`: a leaf, or the end of the subtests waiting at this level. Suites are relative. */
  const addPoint = (depth: number, point: Point) => {
    const level = levels[depth]!;
    level.points.push(point);
    const children = level.pendingChildren;
    const childName = level.childName;
    level.pendingChildren = [];
    level.childName = undefined;
    const name = point.name || childName || `test ${level.points.length}`;
    const message = point.directive !== undefined ? point.reason : undefined;
    const test = makeTest({ name, outcome: outcomeOf(point), message });
    if (children.length === 0) {
      point.test = test;
      level.done.push(test);
      return;
    }
    const named = children.map((child) => ({ ...child, suite: child.suite === '' ? name : `${name} > ${child.suite}` }));
    const childFailed = named.some((c) => c.outcome === 'failed' || c.outcome === 'error');
    level.done.push(...named, ...(test.outcome === 'failed' && !childFailed ? [test] : []));
  };

  /** A YAML block ended: its message, duration and (for a failure) text complete the point's test. */
  const applyYaml = (point: Point) => {
    const test = point.test;
    if (!test) return;
    const duration = point.yaml.map((l) => /^\s*duration_ms:\s*([0-9.]+)\s*$/.exec(l)).find((m) => m !== null);
    const yamlText = point.ok || point.directive !== undefined ? undefined : point.yaml.join('\n');
    const filled = makeTest({
      name: test.name,
      outcome: test.outcome,
      message: test.message ?? yamlMessage(point.yaml),
      details: yamlText,
      durationMs: duration ? Number(duration[1]) : undefined,
    });
    Object.assign(test, { ...filled, suite: test.suite });
  };

  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    const indent = line.length - line.trimStart().length;
    if (yamlFor) {
      if (line.trim() === '...' && indent <= yamlFor.indent + 2) {
        applyYaml(yamlFor.point);
        yamlFor = undefined;
      }
      else if (yamlFor.point.yaml.length < 200) yamlFor.point.yaml.push(line.slice(Math.min(yamlFor.indent + 2, indent)));
      continue;
    }
    if (line.trim() === '') continue;
    const body = line.trimStart();
    const depth = Math.floor(indent / 4);
    if (/^TAP version \d+/i.test(body)) {
      sawTap = true;
      continue;
    }
    const subtest = /^# Subtest(?::\s*(.*))?$/.exec(body);
    if (subtest) {
      // The name of the block that follows, deeper: TAP 14 puts the line at the block's depth, Test::More at the
      // parent's; node also writes one before each leaf (then the leaf's own point clears it).
      if (depth > levels.length - 1) open(depth);
      nextSubtestName = subtest[1]?.trim() ?? '';
      continue;
    }
    if (body === '---') {
      const point = levels[Math.min(depth, levels.length - 1)]!.points.at(-1) ?? { ok: true, name: '', reason: '', yaml: [] };
      yamlFor = { point, indent: indent - 2 };
      continue;
    }
    const plan = PLAN_RE.exec(body);
    const bail = /^Bail out!\s*(.*)$/i.exec(body);
    const test = TEST_RE.exec(body);
    if (!plan && !bail && !test) continue;
    sawTap = true;
    if (depth > levels.length - 1) open(depth);
    else if (depth < levels.length - 1) closeTo(depth);
    if (plan) {
      levels[depth]!.plan = Number(plan[1]);
      if (Number(plan[1]) === 0 && depth === 0 && plan[2]) warnings.push(`skipped whole: ${plan[2].trim()}`);
      continue;
    }
    if (bail) {
      const reason = bail[1]?.trim() || 'Bail out!';
      for (const level of levels) level.bailedOut = reason;
      levels[depth]!.done.push(makeTest({ name: 'Bail out!', outcome: 'error', message: reason }));
      continue;
    }
    let description = test![3] ?? '';
    const point: Point = { ok: test![1] === 'ok', name: '', reason: '', yaml: [] };
    const directive = DIRECTIVE_RE.exec(description);
    if (directive) {
      point.directive = directive[1]!.toLowerCase() === 'skip' ? 'skip' : 'todo';
      point.reason = directive[2]?.trim() || (point.directive === 'skip' ? 'skipped' : 'todo');
      description = description.slice(0, directive.index + (directive[0].startsWith('#') ? 0 : 1));
    }
    point.name = description.replace(/\\#/g, '#').trim();
    nextSubtestName = undefined;
    addPoint(depth, point);
  }
  closeTo(0);
  const top = levels[0]!;
  const tests = [...top.done, ...top.pendingChildren];
  if (!sawTap) return { tests: [], warnings: ['no TAP in the file (no plan, no test points)'], format: 'tap' };
  if (top.plan !== undefined && top.plan !== top.points.length && top.bailedOut === undefined) {
    warnings.push(`plan 1..${top.plan} but ${top.points.length} test points`);
    if (top.points.length < top.plan) {
      tests.push(makeTest({ name: 'missing tests', outcome: 'error', message: `plan 1..${top.plan} but only ${top.points.length} test points: the producer stopped early` }));
    }
  }
  if (top.plan === undefined && top.bailedOut === undefined && top.points.length > 0) warnings.push('no plan: the producer may have stopped early');
  return { tests, warnings, format: 'tap' };
}
