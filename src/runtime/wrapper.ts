/**
 * The step wrapper that runs inside the container and writes the step's exact fate to a status file, so that
 * nspawn's own failures (which also exit 1) are told apart from the step's: no status file, not the step.
 * perl (perl-base, in nearly every Debian image) can tell death by a signal from `exit 128+n`; plain sh cannot.
 * The perl wrapper has no `use strict`: finding and compiling strict.pm took 0.6 of its 3.6 ms inside a container,
 * paid by every step, and a script this small gains nothing from it.
 */
import { constants } from 'node:os';

export const PERL_WRAPPER = `my ($script, $status) = @ARGV;
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

export const SH_WRAPPER = `/bin/sh -e "$1"
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
