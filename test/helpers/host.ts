/** Integration tests need root and systemd-nspawn: fail loudly when they are missing, never skip. */
import { execFileSync } from 'node:child_process';

export function requireContainerHost(): void {
  if (process.getuid?.() !== 0) throw new Error('integration tests must run as root (systemd-nspawn needs it)');
  try {
    execFileSync('systemd-nspawn', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error('systemd-nspawn is missing: apt-get install systemd-container');
  }
}
