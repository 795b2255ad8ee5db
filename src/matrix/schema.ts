/**
 * The matrix file format as zod schemas, kebab-case keys exactly as users write them. Checks that span several
 * fields (image axis present, `${{ matrix.x }}` references, duplicate step names) live in check.ts.
 */
import { z } from 'zod';
import { parseDuration } from '../lib/duration.js';

export const ENV_NAME_RE = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_]*$/;
// `__proto__` excluded: axis keys become object keys, and assigning that one would replace a prototype.
export const AXIS_KEY_RE = /^(?!__proto__$)[A-Za-z_][A-Za-z0-9_-]*$/;
/** `${{ matrix.KEY }}` on its own, whitespace-tolerant. */
export const MATRIX_EXPRESSION_RE = /^\s*\$\{\{\s*matrix\.([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}\s*$/;
// Debian/Ubuntu package names, optionally with =version, /release or :arch; never starting with "-" (apt option).
const PACKAGE_RE = /^[A-Za-z0-9][A-Za-z0-9+.:=~_/-]*$/;
const SHA256_RE = /^[0-9a-fA-F]{64}$/;

const show = (value: unknown): string => JSON.stringify(value) ?? String(value);

/** Syntax only (`host:container[:ro|rw]`); whether the host path is safe to expose is the runtime's call. */
export function bindProblem(text: string): string | undefined {
  const parts = text.split(':');
  if (parts.length < 2 || parts.length > 3) return 'expected host:container or host:container:ro';
  const [host, container, option] = parts as [string, string, string | undefined];
  if (host === '' || container === '') return 'empty path';
  if (text.includes('\0')) return 'NUL in path';
  if (!container.startsWith('/')) return 'the container path must be absolute';
  if (option !== undefined && option !== 'ro' && option !== 'rw') return `unknown option "${option}" (ro or rw)`;
  return undefined;
}

export const MIRROR_URL_MAX = 1000;
// RFC 3986's characters minus what apt's one-line format gives a meaning to: "[" "]" (options), "#" (a comment),
// '"' (quoting), whitespace (the next field); and minus "?" and the backslash, which no archive path needs.
const MIRROR_CHARS_RE = /^[A-Za-z0-9\-._~%!$&'()*+,;=:@/]*$/;

/**
 * Syntax of a Debian/Ubuntu mirror URL (`mirror:` or the host's apt sources); undefined when fine. The URL becomes
 * one field of an apt sources line: anything that could start another field, option or line is refused.
 */
export function mirrorUrlProblem(url: string): string | undefined {
  const scheme = /^(https?|file):\/\//.exec(url);
  if (!scheme) return 'expected an http://, https:// or file:// URL';
  if (url.length > MIRROR_URL_MAX) return `a mirror URL longer than ${MIRROR_URL_MAX} characters`;
  if (/[\s\u0000-\u001f\u007f-\u009f]/u.test(url)) return 'a mirror URL must not contain spaces, newlines or control characters';
  if (/[[\]]/.test(url)) return 'a mirror URL must not contain "[" or "]" (apt options)';
  const bad = [...url].find((char) => !MIRROR_CHARS_RE.test(char));
  if (bad !== undefined) return `a mirror URL must not contain ${JSON.stringify(bad)}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'not a valid URL';
  }
  // The WHATWG parser takes `http:///x` for host "x": look at the text itself.
  if (scheme[1] === 'file') return url.startsWith('file:///') && parsed.host === '' ? undefined : 'expected file:///PATH (no host)';
  return /^https?:\/\/[^/]/.test(url) && parsed.hostname !== '' ? undefined : 'the URL names no host';
}

// The shape only (the images stage checks names and digests fully): no scheme, no spaces, no `..`.
const OCI_REF_RE = /^(?!.*(:\/\/|\.\.|\/\/))[a-z0-9][a-z0-9.:_/-]*[a-z0-9](:[A-Za-z0-9_][A-Za-z0-9_.-]*)?(@sha256:[0-9a-f]{64})?$/;
const IMAGE_CHARSET_RE = /^[A-Za-z0-9._:/@+-]+$/;
export const IMAGE_NAME_MAX = 200;

/** Syntax of an image name; undefined when fine. Whether the image exists is for the images stage. */
export function imageNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty image name';
  if (name.length > IMAGE_NAME_MAX) return `image name longer than ${IMAGE_NAME_MAX} characters`;
  if (!IMAGE_CHARSET_RE.test(name)) return `invalid image name ${show(name)} (letters, digits and . _ : / @ + -)`;
  if (name.includes('..')) return `invalid image name ${show(name)} (".." is not allowed)`;
  if (/^[.:/@+-]/.test(name)) return `invalid image name ${show(name)} (must start with a letter or digit)`;
  return undefined;
}

/** The formats of per-test result files a step may declare (`results:`). */
export const RESULT_FORMATS = ['junit', 'tap', 'automake', 'go-json', 'auto'] as const;
export const RESULT_PATH_MAX = 1024;

/** Syntax of a `results:` path (a container path or glob; relative ones are under /src); undefined when fine. */
export function resultPathProblem(path: string): string | undefined {
  if (path.trim() === '') return 'empty path';
  if (path.length > RESULT_PATH_MAX) return `a path longer than ${RESULT_PATH_MAX} characters`;
  if (/[\u0000-\u001f\u007f]/u.test(path)) return 'a path must not contain newlines or control characters';
  if (path.split('/').includes('..')) return '".." is not allowed (name the directory itself)';
  if (/\{|\}/.test(path)) return '"{" and "}" are not supported (declare one entry per pattern)';
  if (/\[(?![^\]/]*\])/.test(path)) return 'unclosed "["';
  return undefined;
}

export const CACHE_PATH_MAX = 1024;
/** Container paths a `cache:` entry may not name, nor lie below: nsmatrix's own mounts and the kernel's interfaces. */
const CACHE_PATH_REFUSED_TREES = ['/proc', '/sys', '/dev', '/run/nsmatrix', '/src', '/artifacts', '/var/cache/apt/archives'];

/** Syntax of a `cache:` path (an absolute container directory); undefined when fine. */
export function cachePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return 'a cache path must be absolute (a directory in the container)';
  if (path.length > CACHE_PATH_MAX) return `a path longer than ${CACHE_PATH_MAX} characters`;
  if (/[\u0000-\u001f\u007f:\\,]/u.test(path)) return 'a path must not contain control characters, ":", "," or "\\"';
  if (path.split('/').some((part) => part === '..' || part === '.')) return '"." and ".." are not allowed';
  const normal = path.replace(/\/+$/, '');
  if (normal === '' || normal === '/tmp' || normal === '/run') return `${normal || '/'} cannot be cached: name a directory below it`;
  const tree = CACHE_PATH_REFUSED_TREES.find((t) => normal === t || normal.startsWith(`${t}/`));
  if (tree) return `${tree} cannot be cached (nsmatrix mounts it, or it is the kernel's)`;
  return undefined;
}

export type MatrixFile = z.infer<MatrixSchemas['fileSchema']>;

/** The keys a mapping at `path` may hold, for "did you mean" hints; undefined where any key is allowed. */
export function knownKeysAt(path: readonly (string | number)[]): string[] | undefined {
  const { fileSchema, stepSchema, resultSpecSchema, imageSpecSchema, shellSchema, pullSchema } = matrixSchemas();
  if (path.length === 0) return Object.keys(fileSchema.shape);
  if (path[0] === 'steps' && path.length === 2) return Object.keys(stepSchema.shape);
  if (path[0] === 'steps' && path.length === 4 && path[2] === 'results') return Object.keys(resultSpecSchema.shape);
  if (path[0] === 'images' && path.length === 2) return Object.keys(imageSpecSchema.shape);
  if (path[0] === 'shell' && path.length === 1) return Object.keys(shellSchema.shape);
  if (path[0] === 'images' && path.length === 3 && path[2] === 'pull') return Object.keys(pullSchema.shape);
  return undefined;
}

/**
 * The schemas, built on first use: building them is some 5 ms of zod work that commands which read no matrix file
 * (`shell IMAGE`, `images`, `gc`) would otherwise pay at every start.
 */
function buildSchemas() {
  const scalarSchema = z.union([z.string(), z.number(), z.boolean()], {
    error: 'expected a string, number or boolean',
  });

  const envNameSchema = z.string().regex(ENV_NAME_RE, {
    error: (issue) =>
      `invalid environment variable name ${show(issue.input)} (letters, digits and "_", not starting with a digit)`,
  });

  const envSchema = z.record(envNameSchema, scalarSchema);

  const durationSchema = z
    .union([z.string(), z.number()], { error: 'expected a duration such as 90s, 30m or 1h30m' })
    .superRefine((value, ctx) => {
      if (parseDuration(value) === undefined) {
        ctx.addIssue({ code: 'custom', message: `invalid duration ${show(value)} (use e.g. 90s, 30m, 1h30m)` });
      }
    });

  const continueOnErrorSchema = z
    .union([z.boolean(), z.string()], { error: 'expected true, false or ${{ matrix.KEY }}' })
    .superRefine((value, ctx) => {
      if (typeof value === 'string' && !MATRIX_EXPRESSION_RE.test(value)) {
        ctx.addIssue({ code: 'custom', message: `expected true, false or \${{ matrix.KEY }}, got ${show(value)}` });
      }
    });

  const retriesSchema = z.int().min(0).max(100);

  const bindSchema = z.string().superRefine((text, ctx) => {
    const problem = bindProblem(text);
    if (problem) ctx.addIssue({ code: 'custom', message: `invalid bind ${show(text)}: ${problem}` });
  });

  const imageNameSchema = z.string().superRefine((name, ctx) => {
    const problem = imageNameProblem(name);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

  const packageSchema = z.string().regex(PACKAGE_RE, {
    error: (issue) => `invalid package name ${show(issue.input)}`,
  });

  const pullSchema = z.strictObject({
    url: z.string().regex(/^(https?:\/\/|\/)/, { error: 'expected an http(s) URL or an absolute path' }),
    sha256: z.string().regex(SHA256_RE, { error: 'expected 64 hexadecimal digits' }),
  });

  const imageSpecSchema = z
    .strictObject({
      packages: z.array(packageSchema).optional(),
      setup: z.string().optional(),
      mirror: z
        .string()
        .superRefine((url, ctx) => {
          const problem = mirrorUrlProblem(url);
          if (problem) ctx.addIssue({ code: 'custom', message: `invalid mirror ${show(url)}: ${problem}` });
        })
        .optional(),
      pull: pullSchema.optional(),
      path: z.string().regex(/^\//, { error: 'expected an absolute path' }).optional(),
      machine: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, { error: 'invalid machine name' }).optional(),
      'allow-expired-release': z.boolean().optional(),
      oci: z.string().regex(OCI_REF_RE, { error: 'expected an OCI reference REGISTRY/NAME[:TAG][@sha256:DIGEST]' }).optional(),
      insecure: z.boolean().optional(),
    })
    .superRefine((spec, ctx) => {
      const sources = (['pull', 'path', 'machine', 'oci'] as const).filter((key) => spec[key] !== undefined);
      if (sources.length > 1) {
        ctx.addIssue({ code: 'custom', path: [sources[1]!], message: `set only one of pull, path, machine, oci` });
      }
    });

  const entrySchema = z.record(
    z.string().regex(AXIS_KEY_RE, { error: (issue) => `invalid key ${show(issue.input)} (letters, digits, "_", "-")` }),
    scalarSchema,
  );

  const matrixSchema = z
    .object({
      include: z.array(entrySchema, { error: 'expected a list of mappings' }).optional(),
      exclude: z
        .array(
          entrySchema.refine((entry) => Object.keys(entry).length > 0, {
            error: 'an empty exclude entry would exclude every combination',
          }),
          { error: 'expected a list of mappings' },
        )
        .optional(),
    })
    .catchall(z.array(scalarSchema, { error: 'an axis must be a list of values' }).min(1, { error: 'an axis needs at least one value' }));

  const resultSpecSchema = z.strictObject({
    format: z.enum(RESULT_FORMATS),
    path: z.string({ error: 'expected a path or glob, e.g. "build/**/*.trs"' }).superRefine((path, ctx) => {
      const problem = resultPathProblem(path);
      if (problem) ctx.addIssue({ code: 'custom', message: `invalid results path ${show(path)}: ${problem}` });
    }),
  });

  const cachePathSchema = z.string({ error: 'expected a container path, e.g. /root/.cache/ccache' }).superRefine((path, ctx) => {
    const problem = cachePathProblem(path);
    if (problem) ctx.addIssue({ code: 'custom', message: `invalid cache path ${show(path)}: ${problem}` });
  });

  /** `cache:` entries: a path, or `{ path, key }` (the key may use `${{ matrix.KEY }}`). */
  const cacheEntrySchema = z.union(
    [cachePathSchema, z.strictObject({ path: cachePathSchema, key: z.string().min(1).max(200).regex(/^[^\u0000-\u001f\u007f]*$/u, { error: 'a key must not contain control characters' }).optional() })],
    { error: 'expected a path or { path, key }' },
  );

  const cacheListSchema = z.array(cacheEntrySchema, { error: 'expected a list of paths or { path, key }' }).max(16, { error: 'at most 16 cache entries' });

  const stepSchema = z.strictObject({
    name: z.string().min(1),
    run: z.string().min(1),
    timeout: durationSchema.optional(),
    'continue-on-error': continueOnErrorSchema.optional(),
    retries: retriesSchema.optional(),
    env: envSchema.optional(),
    results: z.array(resultSpecSchema, { error: 'expected a list of { format, path }' }).max(32, { error: 'at most 32 results entries per step' }).optional(),
    cache: cacheListSchema.optional(),
  });

  /**
   * `shell:`: the project's own environment for `nsmatrix shell` (no cell: no `${{ matrix.* }}` here). Packages are
   * added to the matrix's, and with `setup` baked into a cached layer like any image's.
   */
  const shellSchema = z.strictObject({
    image: imageNameSchema.optional(),
    packages: z.array(packageSchema).optional(),
    env: envSchema.optional(),
    setup: z.string().optional(),
    source: z.enum(['overlay', 'ro', 'rw']).optional(),
  });

  const fileSchema = z.strictObject({
    name: z.string().min(1).max(200).optional(),
    matrix: matrixSchema,
    images: z.record(imageNameSchema, imageSpecSchema).optional(),
    packages: z.array(packageSchema).optional(),
    setup: z.string().optional(),
    source: z.enum(['overlay', 'ro', 'rw']).optional(),
    env: envSchema.optional(),
    boot: z.boolean().optional(),
    network: z.enum(['host', 'private']).optional(),
    'private-users': z.boolean().optional(),
    'fail-fast': z.boolean().optional(),
    'max-parallel': z.int().min(1).optional(),
    timeout: durationSchema.optional(),
    retries: retriesSchema.optional(),
    'continue-on-error': continueOnErrorSchema.optional(),
    bind: z.array(bindSchema).optional(),
    nspawn: z.array(z.string().regex(/^-/, { error: 'expected a systemd-nspawn option starting with "-"' })).optional(),
    cache: cacheListSchema.optional(),
    'cache-packages': z.boolean().optional(),
    shell: shellSchema.optional(),
    steps: z.array(stepSchema).min(1, { error: 'at least one step is needed' }),
  });

  return { fileSchema, stepSchema, resultSpecSchema, imageSpecSchema, shellSchema, pullSchema };
}

type MatrixSchemas = ReturnType<typeof buildSchemas>;
let built: MatrixSchemas | undefined;

export function matrixSchemas(): MatrixSchemas {
  return (built ??= buildSchemas());
}
