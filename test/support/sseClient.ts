/** One Server-Sent Event as a client sees it. */
export type SseMessage = { id: string | undefined; event: string; data: string };

/**
 * A minimal SSE reader over fetch (what an operator's `curl -N` or a browser's EventSource sees): it
 * parses `id:`, `event:` and `data:` fields and yields each message; comments are skipped. Aborting
 * the controller disconnects.
 */
export const readSse = async function* (
  url: string,
  options: { lastEventId?: string; signal?: AbortSignal } = {},
): AsyncGenerator<SseMessage> {
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}) },
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!response.ok || !response.body) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const bytes of response.body) {
    buffer += decoder.decode(bytes as Uint8Array, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = block.split('\n').filter((line) => !line.startsWith(':'));
      if (fields.length === 0) continue;
      const value = (name: string) =>
        fields.filter((f) => f.startsWith(`${name}:`)).map((f) => f.slice(name.length + 1).replace(/^ /, ''));
      const event = value('event')[0];
      const data = value('data');
      if (event === undefined && data.length === 0) continue;
      yield { id: value('id')[0], event: event ?? 'message', data: data.join('\n') };
    }
  }
};
