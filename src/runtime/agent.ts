/**
 * The boot-mode step agent: a small shell service nsmatrix places in every booted container, so that the host
 * never runs a program of the container itself. The container's systemd starts it (`systemd.wants=` on init's
 * command line, the unit file bound read-only); it waits for the boot to finish, then starts each step the host
 * asks for as a transient unit with `systemd-run --wait --pipe`, its output teed to the host's pipes and to the
 * journal. Everything it runs runs inside the container, with the container's capabilities, seccomp filter and
 * cgroup. The host talks to it through FIFOs it created and opened before the container existed:
 *   agent.in   host -> agent: `<token> <unit> <interpreter>` per step (`... console` for a shell: the unit gets the
 *              container's console, which nspawn gave the user's terminal, instead of pipes); `stop <unit>` kills
 *              a step's unit (its whole cgroup, SIGKILL) after a timeout, so that its result files can be gathered
 *   agent.out  agent -> host: `ready <system state>` once, then `done <token>` per step
 * and per step `<token>.out`, `<token>.err` and `<token>.status` (FIFOs too; the host holds their read ends).
 * The agent holds both open from its start, so a step that replaces their names changes nothing. A step can lie to
 * the agent or kill it; that only spoils its own cell (the host's clock still ends the step).
 */
import { shellQuote } from '../lib/nspawn.js';
import { AGENT_UNIT_MOUNT, CONTROL_MOUNT, SOURCE_MOUNT } from './args.js';

export const AGENT_UNIT_NAME = AGENT_UNIT_MOUNT.slice(AGENT_UNIT_MOUNT.lastIndexOf('/') + 1);
/** Init's command line in a container doubles as the kernel command line: this pulls the agent into the boot. */
export const AGENT_INIT_ARGS = [`systemd.wants=${AGENT_UNIT_NAME}`];
/** An interactive boot: the console is the user's terminal, kept quiet and free (no getty) for the shell's unit. */
export const CONSOLE_INIT_ARGS = ['systemd.mask=console-getty.service', 'systemd.show_status=false', 'systemd.log_target=journal'];
/** The last word of an agent.in line whose unit runs on the console. */
export const AGENT_CONSOLE = 'console';
export const AGENT_INTERPRETERS = ['/usr/bin/perl', '/bin/sh'] as const;
/** The first word of an agent.in line that stops a step's unit (step tokens start with `step-`). */
export const AGENT_STOP = 'stop';

export const AGENT_UNIT = `[Unit]
Description=nsmatrix step agent

[Service]
Type=simple
ExecStart=/bin/sh ${CONTROL_MOUNT}/agent.sh
`;

export const AGENT_SCRIPT = `d=${CONTROL_MOUNT}
exec 3< "$d/agent.in" 5>> "$d/agent.out"
state=$(systemctl is-system-running --wait 2>/dev/null)
echo "ready \${state:-unknown}" >&5
while read -r token unit interpreter mode <&3; do
  case "$token$unit" in *[!A-Za-z0-9-]*|'') continue ;; esac
  case "$token" in ${AGENT_STOP}) systemctl kill --signal=SIGKILL "$unit.service" >/dev/null 2>&1; continue ;; esac
  case "$interpreter" in ${AGENT_INTERPRETERS.join('|')}) ;; *) continue ;; esac
  if [ "$mode" = ${AGENT_CONSOLE} ]; then
    { systemd-run --quiet --wait --collect --service-type=exec --unit="$unit" --working-directory=${SOURCE_MOUNT} \
        -p TTYPath=/dev/console -p StandardInput=tty-force -p StandardOutput=tty -p StandardError=tty \
        -p TTYReset=yes -p TTYVHangup=yes \
        -- "$interpreter" "$d/$token.wrap" "$d/$token.sh" "$d/$token.status" </dev/null >/dev/null 2>&1
      echo "done $token" >&5
    } &
    continue
  fi
  # In the background: the agent keeps reading, to hear a \`stop\` for this step.
  { ( systemd-run --quiet --wait --pipe --collect --service-type=exec --unit="$unit" --working-directory=${SOURCE_MOUNT} \\
      -- "$interpreter" "$d/$token.wrap" "$d/$token.sh" "$d/$token.status" 2>&1 >&4 4>&- \\
      | tee "$d/$token.err" | systemd-cat --identifier="$unit" --priority=err ) 4>&1 \\
    | tee "$d/$token.out" | systemd-cat --identifier="$unit"
    echo "done $token" >&5
  } &
done
`;

/** Environment for a boot-mode step: exported by the script itself (the agent passes none). */
export function exportLines(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([name, value]) => `export ${name}=${shellQuote(value)}\n`)
    .join('');
}
