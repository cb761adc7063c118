/**
 * One benchmark process under a wall-clock limit and a resident-memory cap: a slow backend (the pure-JS cpu
 * backend takes minutes per training step) or a size that does not fit in memory (a tfjs-node 256² training
 * step without gradient checkpointing) ends as a failed measurement with its reason, instead of hanging the
 * bench or pushing a shared machine into the OOM killer.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface WatchLimits {
  timeoutS: number;
  maxRssMb: number;
}

export type WatchedRun =
  | { ok: true; wallMs: number; json: Record<string, unknown>; observedRssMb: number }
  | { ok: false; wallMs: number; error: string; observedRssMb: number };

/** Resident set of a running process in MiB (Linux /proc), or undefined where that cannot be read. */
export function rssMbOf(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs `exe argv` and parses the last stdout line as JSON. Polls the child's RSS every 100 ms (Linux; elsewhere
 * only the time limit applies) and kills it with SIGKILL past either limit. `observedRssMb` is the largest RSS
 * the polls saw (0 where none could be read).
 */
export function runWatched(exe: string, argv: readonly string[], limits: WatchLimits): Promise<WatchedRun> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const proc = spawn(exe, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let stopped: string | undefined;
    let observedMb = 0;
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const stop = (why: string): void => {
      stopped ??= why;
      proc.kill('SIGKILL');
    };
    const poll = setInterval(() => {
      const rss = proc.pid === undefined ? undefined : rssMbOf(proc.pid);
      if (rss === undefined) return;
      observedMb = Math.max(observedMb, rss);
      if (rss > limits.maxRssMb) stop(`stopped at ${Math.round(rss)} MB resident, over the ${limits.maxRssMb} MB cap`);
    }, 100);
    const timer = setTimeout(() => stop(`stopped after ${limits.timeoutS} s (time limit)`), limits.timeoutS * 1000);
    const finish = (run: WatchedRun): void => {
      clearInterval(poll);
      clearTimeout(timer);
      resolve(run);
    };
    proc.on('error', (error) =>
      finish({ ok: false, wallMs: Math.round(performance.now() - t0), error: error.message, observedRssMb: Math.round(observedMb) }),
    );
    proc.on('close', (code) => {
      const wallMs = Math.round(performance.now() - t0);
      const observedRssMb = Math.round(observedMb);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      if (stopped === undefined && code === 0) {
        try {
          finish({ ok: true, wallMs, json: JSON.parse(line) as Record<string, unknown>, observedRssMb });
          return;
        } catch {
          stopped = `last stdout line is not JSON: ${line.slice(0, 200)}`;
        }
      }
      finish({ ok: false, wallMs, error: stopped ?? (stderr.trim().split('\n').at(-1) || `exit code ${String(code)}`), observedRssMb });
    });
  });
}
