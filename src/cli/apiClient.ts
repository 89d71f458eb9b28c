import { userInfo } from 'node:os';

/** A failed API call, carrying the API's `{code, message, details}`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** The node is not answering at all (down, or wrong URL). */
export class NodeUnreachableError extends Error {}

const actor = (): string => {
  try {
    return userInfo().username;
  } catch {
    return 'cli';
  }
};

/** JSON when it is (the node always answers JSON); a proxy's HTML error page becomes its first line as a message. */
const parseBody = (text: string): unknown => {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { message: text.trim().split('\n')[0]?.slice(0, 200) };
  }
};

/**
 * `path?name=value&…` with the parameters that are set. Values go as the user typed them: the node
 * validates them and names any bad one.
 */
export const withQuery = (path: string, params: Record<string, string | undefined>): string => {
  const query = new URLSearchParams(
    Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined),
  ).toString();
  return query === '' ? path : `${path}?${query}`;
};

/** Thin client of the node's HTTP API for the CLI. */
export const apiClient = (baseUrl: string) => {
  /** Sends a request; a 4xx or 5xx answer becomes an ApiError. `timeoutMs` bounds the whole exchange, body included. */
  const send = async (method: string, path: string, body: unknown, timeoutMs: number | null): Promise<Response> => {
    let response: Response;
    try {
      response = await fetch(new URL(path, baseUrl), {
        method,
        headers: { 'x-kairos-actor': actor(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(timeoutMs === null ? {} : { signal: AbortSignal.timeout(timeoutMs) }),
      });
    } catch (err) {
      throw new NodeUnreachableError(
        `cannot reach the Kairos node at ${baseUrl}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`,
      );
    }
    if (!response.ok) {
      const e = (parseBody(await response.text()) ?? {}) as { code?: string; message?: string; details?: unknown };
      throw new ApiError(
        response.status,
        e.code ?? `http_${response.status}`,
        e.message ?? response.statusText,
        e.details,
      );
    }
    return response;
  };
  const call = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const response = await send(method, path, body, 30_000);
    return { status: response.status, body: parseBody(await response.text()) as T };
  };
  return {
    get: <T>(path: string) => call<T>('GET', path),
    post: <T>(path: string, body?: unknown) => call<T>('POST', path, body ?? {}),
    put: <T>(path: string, body: unknown) => call<T>('PUT', path, body),
    delete: <T>(path: string, body?: unknown) => call<T>('DELETE', path, body),
    /**
     * POSTs, then yields each line of the answer, parsed, as it arrives: how a long job (a replay)
     * reports progress. No timeout: such a job may rightly take many minutes.
     */
    async *postLines(path: string, body?: unknown): AsyncGenerator<unknown> {
      const response = await send('POST', path, body ?? {}, null);
      if (!response.body) return;
      const [{ createInterface }, { Readable }] = await Promise.all([import('node:readline'), import('node:stream')]);
      const lines = createInterface({ input: Readable.fromWeb(response.body), crlfDelay: Infinity });
      for await (const line of lines) if (line.trim() !== '') yield JSON.parse(line) as unknown;
    },
  };
};
export type ApiClient = ReturnType<typeof apiClient>;
