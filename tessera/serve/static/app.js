// The search page: plain DOM, no framework, no network asset. Text from the server is always
// inserted as text nodes (never as HTML), so documents cannot inject markup.
"use strict";

const $ = (id) => document.getElementById(id);
const WORD = /[\p{L}\p{N}_]+/gu;

function terms(query) {
  return [...new Set((query.toLowerCase().match(WORD) || []).filter((t) => t.length > 2))];
}

// `text` with the query's terms (and words they start) wrapped in <mark>.
function highlighted(text, query) {
  const span = document.createElement("span");
  const wanted = terms(query);
  let last = 0;
  for (const m of text.matchAll(WORD)) {
    const word = m[0].toLowerCase();
    if (!wanted.some((t) => word.startsWith(t))) continue;
    span.append(text.slice(last, m.index));
    const mark = document.createElement("mark");
    mark.textContent = m[0];
    span.append(mark);
    last = m.index + m[0].length;
  }
  span.append(text.slice(last));
  return span;
}

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

// An API key the server asked for (a 401), kept for this tab only; the key form shows while none works.
const KEY = "tessera-api-key";
class KeyNeeded extends Error {}
let keyGiven = null; // a promise, resolved when the key form is next submitted
let keyResolve = null;

function askForKey() {
  sessionStorage.removeItem(KEY);
  $("key-form").hidden = false;
  $("key").focus();
  keyGiven ||= new Promise((resolve) => { keyResolve = resolve; });
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("key").value.trim());
  $("key").value = "";
  $("key-form").hidden = true;
  showError("");
  const resolve = keyResolve;
  keyGiven = keyResolve = null;
  if (resolve) resolve();
});

// fetch, with the key when there is one; a 401 opens the key form and throws KeyNeeded.
async function send(url, options = {}) {
  const key = sessionStorage.getItem(KEY);
  const headers = key ? { ...options.headers, authorization: `Bearer ${key}` } : options.headers;
  const response = await fetch(url, { ...options, headers });
  if (response.status === 401) {
    const body = await response.json().catch(() => ({}));
    askForKey();
    throw new KeyNeeded(body.error || "this server needs an API key");
  }
  return response;
}

// The message of an error response: Tessera's {"error": "..."} or OpenAI's {"error": {"message": ...}}.
async function failure(response) {
  const body = await response.json().catch(() => ({}));
  const error = body.error && typeof body.error === "object" ? body.error.message : body.error;
  return new Error(error || `HTTP ${response.status}`);
}

async function call(url, options) {
  const response = await send(url, options);
  if (!response.ok) throw await failure(response);
  return response.json();
}

// A JSON POST; the response when it succeeded (read it whole or as a stream), else its error thrown.
async function post(url, body) {
  const response = await send(url, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  if (!response.ok) throw await failure(response);
  return response;
}

// The "diverse" box: MMR at LangChain's default weight, or undefined (not sent).
const DIVERSE_WEIGHT = 0.5;
function chosenMmr() {
  return $("diverse").checked ? DIVERSE_WEIGHT : undefined;
}

// The filter box's JSON, or undefined when empty; a syntax error is shown, not sent.
function chosenFilter() {
  const text = $("filter").value.trim();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`filter: not valid JSON (${err.message})`);
  }
}

// "key: value · key: value" for a hit's or a document's metadata (lists joined by commas).
function metadataLine(metadata) {
  return Object.entries(metadata || {})
    .map(([key, value]) => `${key}: ${Array.isArray(value) ? value.join(", ") : value}`)
    .join(" · ");
}

function chosenIndexes() {
  return [...document.querySelectorAll("#indexes input:checked")].map((box) => box.value);
}

// The search in the address bar, so a reload or a shared link searches the same: the query (up to
// URL_QUERY_MAX characters: a longer one would make the address too long to load), the indexes, k,
// the filter and the diverse box. `restoreSearch` puts a loaded address's choices back.
const URL_QUERY_MAX = 2000;
function rememberSearch(query, indexes) {
  if (query.length > URL_QUERY_MAX) return history.replaceState(null, "", location.pathname);
  const params = new URLSearchParams({ q: query });
  indexes.forEach((name) => params.append("index", name));
  if ($("k").value !== "10") params.set("k", $("k").value);
  if ($("filter").value.trim()) params.set("filter", $("filter").value.trim());
  if ($("diverse").checked) params.set("diverse", "1");
  history.replaceState(null, "", `?${params}`);
}

function restoreSearch(params) {
  const names = params.getAll("index");
  if (names.length) {
    document.querySelectorAll("#indexes input").forEach((box) => { box.checked = names.includes(box.value); });
  }
  if (params.get("k")) $("k").value = params.get("k");
  if (params.get("filter")) $("filter").value = params.get("filter");
  $("diverse").checked = params.get("diverse") === "1";
}

// What a failed or refused request leaves: its message, and no results of an earlier search under it.
function failed(message) {
  showError(message);
  $("results").replaceChildren();
  $("meta").textContent = "";
}

async function loadIndexes() {
  for (;;) {
    try {
      const health = await call("/health");
      if (!health.indexes) await call("/v1/indexes"); // the server names its indexes to key holders only
      const box = $("indexes");
      health.indexes.forEach((info, i) => {
        const label = el("label");
        const input = el("input");
        input.type = "checkbox";
        input.value = info.name;
        input.checked = i === 0;
        label.append(input, ` ${info.name} `, el("span", "muted", `(${info.encoder}, ${info.documents} docs)`));
        box.append(label);
      });
      $("status").textContent = `ready: ${health.indexes.length} index(es)` +
        (health.generator ? `, answers by ${health.generator}` : ", answers: prompt and sources only");
      return;
    } catch (err) {
      $("status").textContent = err.message;
      if (err instanceof KeyNeeded) await keyGiven;
      else await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

// `indexes`: those searched; a hit's document opens from the first that holds it.
function renderHits(hits, query, indexes) {
  const list = $("results");
  list.replaceChildren();
  for (const hit of hits) {
    const item = el("li");
    const head = el("div", "hit-head");
    const link = el("a", "hit-title");
    link.href = `#doc-${encodeURIComponent(hit.doc_id)}`;
    link.append(highlighted(hit.title || hit.doc_id, query));
    link.addEventListener("click", (event) => {
      event.preventDefault();
      openDocument(hit.doc_id, indexes, query);
    });
    head.append(el("span", "rank", `${hit.rank}.`), link, el("span", "score", `score ${hit.score.toFixed(4)} · id ${hit.doc_id}`));
    const snippet = el("p", "snippet");
    snippet.append(highlighted(hit.snippet || "", query));
    item.append(head, snippet);
    if (hit.metadata) item.append(el("p", "meta", metadataLine(hit.metadata)));
    list.append(item);
  }
  if (!hits.length) list.append(el("li", "muted", "no results"));
}

async function search(event) {
  event.preventDefault();
  const query = $("q").value.trim();
  const k = Number($("k").value) || 10;
  const indexes = chosenIndexes();
  if (!query || !indexes.length) return failed(indexes.length ? "type a query" : "pick an index");
  showError("");
  const started = performance.now();
  try {
    const body = { queries: [query], k, filter: chosenFilter(), mmr: chosenMmr() };
    if (indexes.length > 1) body.indexes = indexes; else body.index = indexes[0];
    const result = await (await post("/v1/search", body)).json();
    const total = performance.now() - started;
    renderHits(result.results[0].hits, query, indexes);
    $("meta").textContent = `${result.results[0].hits.length} results from ${indexes.join(" + ")}` +
      `${indexes.length > 1 ? " (RRF)" : ""} · server ${result.took_ms.toFixed(1)} ms · total ${total.toFixed(1)} ms`;
    rememberSearch(query, indexes);
  } catch (err) {
    failed(err.message);
  }
}

// A document from the first of `indexes` that holds it (a fused hit may be in a later one only).
async function fetchDocument(docId, indexes) {
  for (const [i, index] of indexes.entries()) {
    const response = await send(`/v1/doc/${encodeURIComponent(docId)}?index=${encodeURIComponent(index)}`);
    if (response.ok) return response.json();
    if (response.status !== 404 || i === indexes.length - 1) throw await failure(response);
  }
}

async function openDocument(docId, indexes, query) {
  try {
    const doc = await fetchDocument(docId, indexes);
    const index = doc.index;
    $("doc-title").replaceChildren(highlighted(doc.title || doc.doc_id, query));
    $("doc-id").textContent = `${doc.index} · ${doc.doc_id}`;
    $("doc-meta").textContent = metadataLine(doc.metadata);
    $("doc-text").replaceChildren(highlighted(doc.text, query));
    $("similar").onclick = () => showSimilar(docId, index);
    $("doc").showModal();
  } catch (err) {
    showError(err.message);
  }
}

// "Similar documents" in a document's view: its nearest documents in the same index.
async function showSimilar(docId, index) {
  $("doc").close();
  showError("");
  try {
    const k = Number($("k").value) || 10;
    const result = await call(`/v1/similar/${encodeURIComponent(docId)}?index=${encodeURIComponent(index)}&k=${k}`);
    renderHits(result.results[0].hits, result.results[0].query, [index]);
    $("meta").textContent = `${result.results[0].hits.length} documents like ${docId} in ${index}` +
      ` · server ${result.took_ms.toFixed(1)} ms`;
  } catch (err) {
    failed(err.message);
  }
}

// Server-sent events read from a fetch response: {name, data} for each block, data as text.
async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      yield { name: (block.match(/^event: (.*)$/m) || [])[1], data: (block.match(/^data: (.*)$/m) || [])[1] };
    }
  }
}

// What an answer is asked with on both RAG routes: the page's k, filter and diversity, streamed.
function answerOptions() {
  return { k: Number($("k").value) || 10, stream: true, filter: chosenFilter(), mmr: chosenMmr() };
}

// The conversation in the answer panel, as OpenAI messages: finished question and answer turns.
let conversation = [];

// The panel for a new `question`: the finished turns above it, its answer and sources to come.
function startTurn(question) {
  const turns = [];
  for (let i = 0; i + 1 < conversation.length; i += 2) {
    const item = el("li");
    item.append(el("p", "question", conversation[i].content), el("p", "", conversation[i + 1].content));
    turns.push(item);
  }
  $("turns").replaceChildren(...turns);
  $("rag").hidden = false;
  $("question").textContent = question;
  $("answer").textContent = "…";
  $("searched").hidden = true;
  $("sources").replaceChildren();
  $("follow-up").hidden = true;
}

// An answer with its citations ([n], as the RAG prompt asks for them) linked to the sources they
// name; a number with no source stays text.
function showAnswer(text) {
  const links = [...$("sources").querySelectorAll("a.hit-title")];
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(/\[(\d+)\]/g)) {
    const source = links.find((link) => link.dataset.cite === m[1]);  // the prompt's number, not the rank
    if (!source) continue;
    const link = el("a", "cite", m[0]);
    link.href = "#";
    link.title = source.textContent;
    link.addEventListener("click", (e) => { e.preventDefault(); source.click(); });
    parts.push(text.slice(last, m.index), link);
    last = m.index + m[0].length;
  }
  parts.push(text.slice(last));
  $("answer").replaceChildren(...parts);
}

// The passages an answer was built from; each opens from the first of `indexes` that holds it.
function showSources(sources, indexes, query) {
  for (const s of sources) {
    const item = el("li");
    const link = el("a", "hit-title", s.title || s.doc_id);
    link.href = "#";
    if (s.cite != null) link.dataset.cite = String(s.cite);
    link.addEventListener("click", (e) => { e.preventDefault(); openDocument(s.doc_id, indexes, query); });
    if (s.cite != null) item.append(el("span", "cite-number", `[${s.cite}] `));  // what the answer cites
    item.append(link, el("span", "score", ` ${s.doc_id}`));
    $("sources").append(item);
  }
}

// A turn answered: it joins the conversation, and a follow-up may be asked.
function finishTurn(question, answer, indexes, started) {
  conversation.push({ role: "user", content: question }, { role: "assistant", content: answer });
  $("follow-up").hidden = false;
  $("meta").textContent = `answer from ${indexes.join(" + ")}${indexes.length > 1 ? " (RRF)" : ""}` +
    ` in ${(performance.now() - started).toFixed(0)} ms`;
}

// RAG over the chosen indexes (two or more: fused, as the search), streamed; starts a new conversation.
async function ask() {
  const query = $("q").value.trim();
  const indexes = chosenIndexes();
  const index = indexes[0];
  if (!query || !index) return showError("type a question and pick an index");
  showError("");
  conversation = [];
  startTurn(query);
  const started = performance.now();
  try {
    const response = await post("/v1/rag", {
      query, ...answerOptions(), ...(indexes.length > 1 ? { indexes } : { index }),
    });
    let answer = "";
    let generator = null;
    for await (const { name, data } of serverEvents(response)) {
      const body = JSON.parse(data || "null");
      if (name === "sources") {
        showSources(body.sources, indexes, query);
        generator = body.generator;
        $("answer").textContent = generator ? "" :
          `no generator on this server (start it with --generator local): ${body.prompt_tokens} prompt tokens from these sources`;
      } else if (name === "token") {
        answer += body.text;
        showAnswer(answer);
      } else if (name === "error") {
        throw new Error(body.error);
      }
    }
    if (generator) finishTurn(query, answer, indexes, started);
  } catch (err) {
    showError(err.message);
    if ($("answer").textContent === "…") $("answer").textContent = ""; // no answer is coming
  }
}

// A follow-up: the whole conversation goes to the chat API, which searches as `follow_up` says
// (the server's default unless chosen) and answers with the earlier turns in the prompt.
async function followUp(event) {
  event.preventDefault();
  const question = $("fq").value.trim();
  const indexes = chosenIndexes();
  if (!question || !indexes.length) return showError(indexes.length ? "type a follow-up" : "pick an index");
  showError("");
  const messages = [...conversation, { role: "user", content: question }];
  startTurn(question);
  const started = performance.now();
  try {
    const response = await post("/v1/chat/completions", {
      model: indexes[0], messages, ...answerOptions(), follow_up: $("follow-mode").value || undefined,
      ...(indexes.length > 1 ? { indexes } : {}),
    });
    let answer = "";
    for await (const { data } of serverEvents(response)) {
      if (!data || data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.sources) {
        showSources(chunk.sources, indexes, chunk.search_query);
        $("searched").textContent = `searched: ${chunk.search_query}`;
        $("searched").hidden = chunk.search_query === question;
      }
      answer += chunk.choices[0].delta.content || "";
      showAnswer(answer || "…");
    }
    $("fq").value = "";
    finishTurn(question, answer, indexes, started);
  } catch (err) {
    showError(err.message);
    if ($("answer").textContent === "…") $("answer").textContent = "";
    $("follow-up").hidden = false; // the conversation is as it was: ask again
  }
}

document.addEventListener("keydown", (event) => {
  if (event.key === "/" && document.activeElement !== $("q")) {
    event.preventDefault();
    $("q").focus();
  }
});
$("search").addEventListener("submit", search);
$("ask").addEventListener("click", ask);
$("follow-up").addEventListener("submit", followUp);
const params = new URLSearchParams(location.search);
const initial = params.get("q");
if (initial) $("q").value = initial;
loadIndexes().then(() => {
  restoreSearch(params);
  if (initial) $("search").requestSubmit();
});
