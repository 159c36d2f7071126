// CPU time of a server under test, read from /proc: what a benchmark divides
// by the messages it sent to get CPU per message, unaffected by the wall-clock
// contention of a shared machine.
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString());

/** The processes of process group `pgid`: pid, command name, CPU seconds (user + system). */
function processesOf(pgid) {
  const found = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      found.push({ pid, comm, secs: (Number(fields[11]) + Number(fields[12])) / TICK });
    } catch { /* gone */ }
  }
  return found;
}

/**
 * CPU seconds (user + system) of the processes in process group `pgid`:
 * `all` of them (wrangler, its proxy and workerd) and `workerd` alone.
 */
export function cpuOf(pgid) {
  const total = { all: 0, workerd: 0 };
  for (const p of processesOf(pgid)) {
    total.all += p.secs;
    if (p.comm === 'workerd') total.workerd += p.secs;
  }
  return total;
}

/** The pids of the workerd processes in process group `pgid` (the profiler samples them). */
export function workerdPids(pgid) {
  return processesOf(pgid).filter((p) => p.comm === 'workerd').map((p) => p.pid);
}
