/** Test-only HTTP helpers: requests with any headers (Host included) and raw-socket requests. */
import { Agent, request } from 'node:http';
import { connect } from 'node:net';

export interface HttpReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface HttpCall {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  agent?: Agent;
}

/** One request to 127.0.0.1:port; Host defaults to 127.0.0.1:port; JSON bodies get their Content-Type. */
export function http(port: number, call: HttpCall): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: `127.0.0.1:${port}`, ...call.headers };
    if (call.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) {
      headers['content-type'] = 'application/json';
    }
    const req = request(
      { host: '127.0.0.1', port, path: call.path, method: call.method ?? 'GET', headers, agent: call.agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(call.body);
  });
}

/** The parsed JSON body (throws with the body when it is not JSON). */
export function json<T = Record<string, unknown>>(r: HttpReply): T {
  try {
    return JSON.parse(r.body) as T;
  } catch {
    throw new Error(`not JSON (${r.status}): ${r.body.slice(0, 200)}`);
  }
}

/**
 * Send bytes on a fresh connection exactly as given and collect what comes back until the server closes
 * (or `timeoutMs`): the status of the first response line, the whole text, and whether the server closed.
 */
export function rawRequest(
  port: number,
  bytes: Buffer | string,
  timeoutMs = 5000,
): Promise<{ status: number; text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 0, text, closed });
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    s.on('data', (b: Buffer) => chunks.push(b));
    s.on('end', () => done(true));
    s.on('close', () => done(true));
    s.on('error', () => done(true));
    s.write(bytes);
  });
}
