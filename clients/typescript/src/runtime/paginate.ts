/**
 * Auto-pagination: follows `nextLink` until it is `null`. A list read this way sees every item
 * once: the cursors are keyset cursors, stable under concurrent inserts.
 */

export interface Page<T> {
  data: T[];
  nextLink?: string | null;
}

/** Fetches one page; `query` is `undefined` for the first page, else the next link's query. */
export type PageFetcher<T> = (query: Record<string, string> | undefined) => Promise<Page<T>>;

/** Every page, first to last. */
export async function* pages<T>(fetchPage: PageFetcher<T>): AsyncGenerator<Page<T>, void, undefined> {
  let query: Record<string, string> | undefined;
  const followed = new Set<string>();
  for (;;) {
    const page = await fetchPage(query);
    yield page;
    const next = page.nextLink;
    if (!next) return;
    if (followed.has(next)) throw new Error(`pagination loop: ${next} was already followed`);
    followed.add(next);
    query = Object.fromEntries(new URL(next, "http://herald.invalid").searchParams);
  }
}

/** Every item of every page, in order. */
export async function* items<T>(fetchPage: PageFetcher<T>): AsyncGenerator<T, void, undefined> {
  for await (const page of pages(fetchPage)) yield* page.data;
}
