// Whether a node's process runs, is paused, or is gone, from its pid and config file.
//
// A pid in a state file may outlive its process and be reused by another program, so a pid is
// trusted only while that process's command line still names the node's config file (Linux
// /proc). Elsewhere (no /proc) kill(pid, 0) is all there is, and a pause cannot be seen.

import { readFileSync } from 'node:fs';

export type NodeLiveness = 'alive' | 'paused' | 'dead';

/**
 * The liveness of `pid` as the node `configFile`: dead when no such process runs, or when the pid
 * now belongs to another program (Linux: /proc/<pid>/cmdline lacks the config file) or is a
 * zombie; paused when stopped by SIGSTOP (Linux: state T in /proc/<pid>/stat).
 */
export function processLiveness(pid: number | undefined, configFile: string): NodeLiveness {
  if (pid === undefined) return 'dead';
  try {
    process.kill(pid, 0);
  } catch {
    // ESRCH: gone. EPERM: it exists but belongs to someone else, so it is not our node.
    return 'dead';
  }
  let stat: string;
  try {
    const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (!commandLine.split('\0').includes(configFile)) return 'dead';
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // No /proc (macOS): trust kill(pid, 0); a pause cannot be observed there.
    return 'alive';
  }
  // Field 3, after the parenthesised command name (which may itself contain spaces).
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === 'Z' || state === 'X') return 'dead';
  if (state === 'T' || state === 't') return 'paused';
  return 'alive';
}
