/**
 * The step wrapper that runs inside the container and writes the step's exact fate to a status file, so that
 * nspawn's own failures (which also exit 1) are told apart from the step's: no status file, not the step.
 * perl (perl-base, in nearly every Debian image) can tell death by a signal from `exit 128+n`; plain sh cannot.
 * Armed ahead of its turn (exec.ts), a wrapper is given a third argument: it first waits for the gate word on
 * stdin, exits 125 without running anything if the pipe closes without it, and gives the step /dev/null instead.
 * The perl wrapper has no `use strict`: finding and compiling strict.pm took 0.6 of its 3.6 ms inside a container,
 * paid by every step, and a script this small gains nothing from it.
 */
import { constants } from 'node:os';
import { GATE_WORD } from '../lib/process.js';

/** The gate word as the wrappers compare it (a line: perl keeps its newline, sh's `read` drops it). */
const WORD = GATE_WORD.trimEnd();

export const PERL_WRAPPER = `my ($script, $status, $gated) = @ARGV;
if ($gated) {
  my $word = <STDIN>;
  exit 125 unless defined $word && $word eq "${WORD}\\n";
  open(STDIN, '<', '/dev/null') or exit 125;
}
my $pid = fork();
die "nsmatrix: fork failed: $!\\n" unless defined $pid;
if ($pid == 0) { exec('/bin/sh', '-e', $script) or exit 127; }
waitpid($pid, 0);
my $w = $?;
my $sig = $w & 127;
open(my $fh, '+<', $status) or die "nsmatrix: cannot write $status: $!\\n";
print $fh ($sig ? "signal $sig\\n" : "exit " . ($w >> 8) . "\\n");
close($fh) or die "nsmatrix: cannot write $status: $!\\n";
exit($sig ? 128 + $sig : $w >> 8);
`;

export const SH_WRAPPER = `if [ -n "$3" ]; then
  IFS= read -r word || exit 125
  [ "$word" = ${WORD} ] || exit 125
  exec </dev/null
fi
/bin/sh -e "$1"
s=$?
echo "exit $s" 1<> "$2"
exit $s
`;

/**
 * The host pre-writes the status file with this many blanks; the wrapper overwrites them in place, so recording a
 * step's fate needs no new disk space even when the step filled the disk.
 */
export const STATUS_ROOM = 64;

export interface StepStatus {
  exitCode: number | null;
  signal: string | null;
}

export function signalName(num: number): string {
  const entry = Object.entries(constants.signals).find(([, n]) => n === num);
  return entry ? entry[0] : `SIG${num}`;
}

/** Parses a status file: `exit N` or `signal N`. */
export function parseStatus(text: string): StepStatus | null {
  const match = /^(exit|signal) (\d+)\s*$/.exec(text);
  if (!match) return null;
  const n = Number(match[2]);
  return match[1] === 'exit' ? { exitCode: n, signal: null } : { exitCode: null, signal: signalName(n) };
}
