import { describe, expect, it } from 'vitest';
import { createReporter, parseReporterFlag, reporterNames } from '../../reporters/index.js';
import { UsageError } from '../../src/errors.js';

describe('reporter registry', () => {
  it('creates every named reporter with an onRunEnd hook', () => {
    expect(reporterNames).toEqual(['junit', 'json', 'markdown', 'html']);
    for (const name of reporterNames) {
      const reporter = createReporter(name);
      expect(reporter.name).toBe(name);
      expect(typeof reporter.onRunEnd).toBe('function');
    }
  });

  it('rejects an unknown name with a UsageError listing the valid ones', () => {
    expect(() => createReporter('xml')).toThrow(UsageError);
    expect(() => createReporter('xml')).toThrow('unknown reporter "xml" (valid: junit, json, markdown, html)');
    expect(() => createReporter('toString')).toThrow(UsageError);
  });

  it('parses NAME and NAME=PATH', () => {
    expect(parseReporterFlag('junit')).toEqual({ name: 'junit' });
    expect(parseReporterFlag('junit=path/x.xml')).toEqual({ name: 'junit', target: 'path/x.xml' });
    expect(parseReporterFlag('html=a=b.html')).toEqual({ name: 'html', target: 'a=b.html' });
    expect(() => parseReporterFlag('junit=')).toThrow(/empty path/);
    expect(() => parseReporterFlag('nope=x')).toThrow(/unknown reporter "nope"/);
  });
});
