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

/** Thin client of the node's HTTP API for the CLI. */
export const apiClient = (baseUrl: string) => {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> => {
    let response: Response;
    try {
      response = await fetch(new URL(path, baseUrl), {
        method,
        headers: { 'x-kairos-actor': actor(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      throw new NodeUnreachableError(
        `cannot reach the Kairos node at ${baseUrl}: ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`,
      );
    }
    const text = await response.text();
    const parsed = parseBody(text);
    if (!response.ok) {
      const e = (parsed ?? {}) as { code?: string; message?: string; details?: unknown };
      throw new ApiError(
        response.status,
        e.code ?? `http_${response.status}`,
        e.message ?? response.statusText,
        e.details,
      );
    }
    return { status: response.status, body: parsed as T };
  };
  return {
    get: <T>(path: string) => call<T>('GET', path),
    post: <T>(path: string, body?: unknown) => call<T>('POST', path, body ?? {}),
    put: <T>(path: string, body: unknown) => call<T>('PUT', path, body),
    delete: <T>(path: string) => call<T>('DELETE', path),
  };
};
export type ApiClient = ReturnType<typeof apiClient>;
