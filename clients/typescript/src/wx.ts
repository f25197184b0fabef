/**
 * WeChat mini-programs have `wx.request` but no `fetch`, `Request`, `Response`, `Headers` or `FormData`.
 * `wxRequestFetch(wx)` turns `wx.request` into the fetch function openapi-fetch calls, and installs small
 * stand-ins for those classes when the runtime lacks them (only then: where they exist they are kept).
 */

/** The methods `wx.request` has (no PATCH: that one goes as POST + X-HTTP-Method-Override). */
export type WxMethod = "OPTIONS" | "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "TRACE" | "CONNECT";
const WX_METHODS: readonly string[] = ["OPTIONS", "GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "CONNECT"];

/** What `wx.request` is given (the subset used here; compatible with miniprogram-api-typings). */
export interface WxRequestOptions {
  url: string;
  method: WxMethod;
  header: Record<string, string>;
  data?: string;
  /** Anything but "json": wx leaves the body as text (its documentation's value is "其他"). */
  dataType: string;
  responseType: "text";
  timeout?: number;
  success: (result: WxRequestSuccess) => void;
  fail: (error: { errMsg: string; errno?: number }) => void;
}

/** What `wx.request` answers on success (any HTTP status). */
export interface WxRequestSuccess {
  data: unknown;
  statusCode: number;
  header?: Record<string, unknown>;
}

/** The `wx` global, or anything with a compatible `request` (Taro's and uni-app's are). */
export interface WxLike {
  request(options: WxRequestOptions): unknown;
}

type HeaderInit = Record<string, string> | [string, string][] | MiniHeaders | Headers | undefined | null;

class MiniHeaders {
  private readonly map = new Map<string, string>();

  constructor(init?: HeaderInit) {
    if (!init) return;
    const entries: Iterable<[string, string]> =
      Array.isArray(init) ? init : typeof (init as MiniHeaders).entries === "function"
        ? (init as MiniHeaders).entries() : Object.entries(init as Record<string, string>);
    for (const [name, value] of entries) this.append(name, value);
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    const old = this.map.get(key);
    this.map.set(key, old === undefined ? String(value) : `${old}, ${value}`);
  }

  set(name: string, value: string): void {
    this.map.set(name.toLowerCase(), String(value));
  }

  get(name: string): string | null {
    return this.map.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.map.has(name.toLowerCase());
  }

  delete(name: string): void {
    this.map.delete(name.toLowerCase());
  }

  forEach(callback: (value: string, name: string, headers: MiniHeaders) => void): void {
    for (const [name, value] of this.map) callback(value, name, this);
  }

  entries(): IterableIterator<[string, string]> {
    return this.map.entries();
  }

  keys(): IterableIterator<string> {
    return this.map.keys();
  }

  values(): IterableIterator<string> {
    return this.map.values();
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.map.entries();
  }
}

interface MiniRequestInit {
  method?: string;
  headers?: HeaderInit;
  body?: string | null;
  [key: string]: unknown;
}

class MiniRequest {
  readonly url: string;
  readonly method: string;
  readonly headers: MiniHeaders;
  private readonly bodyText: string | null;

  constructor(input: string | MiniRequest, init: MiniRequestInit = {}) {
    const base = typeof input === "string" ? undefined : input;
    this.url = typeof input === "string" ? input : input.url;
    this.method = (init.method ?? base?.method ?? "GET").toUpperCase();
    this.headers = new MiniHeaders(init.headers ?? base?.headers);
    const body = init.body ?? base?.bodyText ?? null;
    if (body !== null && typeof body !== "string") {
      throw new TypeError("only string bodies can be sent with wx.request (JSON is)");
    }
    this.bodyText = body;
  }

  async text(): Promise<string> {
    return this.bodyText ?? "";
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  clone(): MiniRequest {
    return new MiniRequest(this);
  }
}

interface MiniResponseInit {
  status?: number;
  statusText?: string;
  headers?: HeaderInit;
}

class MiniResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: MiniHeaders;
  readonly ok: boolean;
  readonly body: null = null;
  readonly redirected = false;
  readonly type = "basic";
  url = "";
  private readonly bodyText: string;

  constructor(body?: string | null, init: MiniResponseInit = {}) {
    this.status = init.status ?? 200;
    this.statusText = init.statusText ?? "";
    this.headers = new MiniHeaders(init.headers);
    this.ok = this.status >= 200 && this.status < 300;
    this.bodyText = body ?? "";
  }

  async text(): Promise<string> {
    return this.bodyText;
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.bodyText);
  }

  clone(): MiniResponse {
    const copy = new MiniResponse(this.bodyText, { status: this.status, statusText: this.statusText, headers: this.headers });
    copy.url = this.url;
    return copy;
  }
}

/** Never constructed by this client (it sends JSON); present so `body instanceof FormData` checks work. */
class MiniFormData {}

/** Install the stand-ins for whichever of Headers, Request, Response, FormData the runtime lacks. */
export function installFetchPolyfills(target: Record<string, unknown> = globalThis as unknown as Record<string, unknown>): void {
  const standIns: Record<string, unknown> = {
    Headers: MiniHeaders, Request: MiniRequest, Response: MiniResponse, FormData: MiniFormData,
  };
  for (const [name, standIn] of Object.entries(standIns)) {
    if (typeof target[name] !== "function") target[name] = standIn;
  }
}

function bodyText(data: unknown): string {
  if (data === undefined || data === null) return "";
  if (typeof data === "string") return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  return JSON.stringify(data); // a runtime that parsed JSON despite dataType
}

function responseHeaders(header: WxRequestSuccess["header"]): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, value] of Object.entries(header ?? {})) {
    if (value === undefined || value === null) continue;
    for (const one of Array.isArray(value) ? value : [value]) out.push([name, String(one)]);
  }
  return out;
}

/**
 * A fetch function over `wx.request`: `createQunzhuClient({ baseUrl, token, fetch: wxRequestFetch(wx) })`.
 * The body goes as text and comes back as text (`dataType` "其他", not "json": wx does not parse it), so
 * openapi-fetch parses JSON and problem documents itself. A network failure rejects with a TypeError,
 * as fetch does. wx.request cannot send PATCH, so a PATCH goes as POST with `X-HTTP-Method-Override: PATCH`,
 * which the gateway turns back into the PATCH (and allows for nothing else); any other method wx.request
 * lacks rejects with a TypeError before anything is sent.
 */
export function wxRequestFetch(wx: WxLike, options: { timeoutMs?: number } = {}): (input: Request) => Promise<Response> {
  installFetchPolyfills();
  return async (input: Request): Promise<Response> => {
    const header: Record<string, string> = {};
    input.headers.forEach((value, name) => {
      header[name] = value;
    });
    let method = input.method.toUpperCase();
    if (method === "PATCH") {
      header["x-http-method-override"] = "PATCH";
      method = "POST";
    }
    if (!WX_METHODS.includes(method)) {
      throw new TypeError(`wx.request cannot send ${method} (it has ${WX_METHODS.join(", ")})`);
    }
    const data = method === "GET" || method === "HEAD" ? undefined : await input.text();
    const result = await new Promise<WxRequestSuccess>((resolve, reject) => {
      wx.request({
        url: input.url,
        method: method as WxMethod,
        header,
        ...(data ? { data } : {}),
        dataType: "其他",
        responseType: "text",
        ...(options.timeoutMs ? { timeout: options.timeoutMs } : {}),
        success: resolve,
        fail: (error) => reject(new TypeError(`wx.request failed: ${error.errMsg}`)),
      });
    });
    const status = result.statusCode;
    const response = new Response(status === 204 || status === 304 ? null : bodyText(result.data), {
      status,
      headers: responseHeaders(result.header),
    });
    return response;
  };
}
