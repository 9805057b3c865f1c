// A simulator in a child process, driven over Node's IPC channel: request/response by id, the child answering
// {id: 0} once it is ready. Shared by the fleet and cluster benches, whose child scripts differ.
import { spawn, type ChildProcess } from 'node:child_process';

export class SimIpc {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  #next = 1;
  #pending = new Map<number, (m: any) => void>();

  constructor(script: string, nodeArgs: string[] = []) {
    this.child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.ready = new Promise((resolve) => this.#pending.set(0, () => resolve()));
    this.child.on('message', (m: any) => {
      const f = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      f?.(m);
    });
  }

  async call(cmd: Record<string, unknown>): Promise<any> {
    const id = this.#next++;
    const res = await new Promise<any>((resolve) => {
      this.#pending.set(id, resolve);
      this.child.send({ ...cmd, id });
    });
    if (!res.ok) throw new Error(res.error);
    return res;
  }
}
