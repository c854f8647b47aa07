// The cinerec web page: plain ES module, no framework, no network beyond this server.
//
// State: the visitor's ratings live in localStorage and go with every request as the
// history (POST /v1/recommendations); a known user id switches to
// GET /v1/recommendations?user=. Every API error is shown with the server's message.

const STORAGE_KEY = "cinerec.ratings.v1";
const TOP_K = 10;
const SEARCH_LIMIT = 12;
const SEARCH_DELAY_MS = 250;
const SLIDER_DELAY_MS = 200;
const RATING_STEPS = [5, 4.5, 4, 3.5, 3, 2.5, 2, 1.5, 1, 0.5];

const $ = (id) => document.getElementById(id);

const state = {
  ratings: loadRatings(), // [{movieId, title, genres, rating, ts}], newest first
  user: null, // a known user id (its digits, a string) or null: the visitor's own ratings
  model: "",
  risk: 0,
  recSeq: 0, // answers to older requests than the latest are dropped
  searchSeq: 0,
  shown: 0, // recommendation answers rendered (data-request-count, for tests and humans)
};

// ---- API ---------------------------------------------------------------------------
class ApiError extends Error {
  constructor(message, status, code, requestId) {
    super(message);
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

// Relative URLs: the page keeps working behind a path prefix.
async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(`cannot reach the server (${e.message})`, 0);
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null; // a proxy's HTML error page: fall back to the status line
  }
  if (!res.ok) {
    const err = data && data.error;
    const message = (err && err.message) || `${res.status} ${res.statusText || "error"}`;
    throw new ApiError(message, res.status, err && err.code, data && data.request_id);
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  return q.toString();
}

// ---- messages ----------------------------------------------------------------------
// One line per source (recommendations, search, save, ...): a success of one source
// clears only its own message.
const errors = new Map();

function showError(err, what, source = what) {
  let text = `${what}: ${err.message}`;
  if (err.status) text += ` (HTTP ${err.status}${err.code ? `, ${err.code}` : ""})`;
  if (err.requestId) text += ` · request ${err.requestId}`;
  errors.set(source, text);
  renderErrors();
}

function clearError(source) {
  if (source === undefined) errors.clear();
  else errors.delete(source);
  renderErrors();
}

function renderErrors() {
  $("error-text").replaceChildren(...[...errors.values()].map((t) => el("span", { class: "line", text: t })));
  $("error").hidden = errors.size === 0;
}

// ---- ratings kept in the browser ----------------------------------------------------
function loadRatings() {
  try {
    const raw = JSON.parse(localStorage.getItem(STORAGE_KEY) || "[]");
    return Array.isArray(raw)
      ? raw.filter((r) => r && Number.isFinite(r.movieId) && Number.isFinite(r.rating))
      : [];
  } catch {
    return []; // storage off or a foreign value: start empty rather than fail
  }
}

function storeRatings() {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(state.ratings));
  } catch {
    // storage full or disabled: the ratings still work for this page view
  }
}

function rate(movie, rating) {
  const rest = state.ratings.filter((r) => r.movieId !== movie.movieId);
  const entry = {
    movieId: movie.movieId,
    title: movie.title,
    genres: movie.genres || [],
    rating,
    ts: Math.floor(Date.now() / 1000), // (user, movie, ts) makes a later save idempotent
  };
  state.ratings = [entry, ...rest];
  storeRatings();
  renderRatings();
  markRated();
  refresh();
}

function unrate(movieId) {
  state.ratings = state.ratings.filter((r) => r.movieId !== movieId);
  storeRatings();
  renderRatings();
  markRated();
  refresh();
}

function ratingOf(movieId) {
  const r = state.ratings.find((x) => x.movieId === movieId);
  return r ? r.rating : null;
}

// ---- small view helpers -------------------------------------------------------------
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) node.append(c);
  }
  return node;
}

function hash(text) {
  let h = 2166136261; // FNV-1a: a stable colour per title
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

const SMALL_WORDS = new Set(["the", "a", "an", "of", "and", "le", "la", "les", "el", "der", "die", "das"]);

function initials(title) {
  const bare = title.replace(/\s*\(\d{4}\)\s*$/, ""); // "Heat (1995)" -> "Heat"
  const words = bare.split(/[\s:,.\-–]+/).filter((w) => /\w/.test(w));
  const strong = words.filter((w) => !SMALL_WORDS.has(w.toLowerCase()));
  const use = (strong.length ? strong : words).slice(0, 2);
  return use.map((w) => w[0].toUpperCase()).join("") || "?";
}

// A poster placeholder: a coloured tile with the initials (and the first genre).
function poster(movie, size = "") {
  const h = hash(movie.title || String(movie.movieId));
  const tile = el(
    "div",
    { class: `poster ${size}`, "aria-hidden": "true" },
    el("span", { class: "initials", text: initials(movie.title || String(movie.movieId)) }),
    size === "small" ? null : el("span", { class: "poster-genre", text: (movie.genres || [])[0] || "" }),
  );
  tile.style.setProperty("--hue", String(h % 360));
  tile.style.setProperty("--hue2", String((h >>> 9) % 360));
  return tile;
}

function fmt(x, digits = 2) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}

function stars(rating) {
  return `${Number(rating).toFixed(1)} ★`;
}

// ---- search -------------------------------------------------------------------------
let searchTimer = 0;

function scheduleSearch() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(search, SEARCH_DELAY_MS);
}

async function search() {
  const text = $("search").value.trim();
  const seq = ++state.searchSeq;
  const list = $("search-results");
  if (!text) {
    list.replaceChildren();
    $("search-status").textContent = "";
    return;
  }
  $("search-status").textContent = "searching…";
  try {
    const data = await api(`v1/items?${query({ search: text, limit: SEARCH_LIMIT, model: state.model })}`);
    if (seq !== state.searchSeq) return;
    clearError("search");
    const items = data.items || [];
    $("search-status").textContent = items.length
      ? `${items.length} title${items.length === 1 ? "" : "s"} with “${text}”`
      : `no title contains “${text}”`;
    list.replaceChildren(...items.map(searchResult));
    markRated();
  } catch (e) {
    if (seq !== state.searchSeq) return;
    $("search-status").textContent = "";
    showError(e, "search failed", "search");
  }
}

function searchResult(movie) {
  const id = `rate-${movie.movieId}`;
  const select = el(
    "select",
    { id, "data-testid": "rate-select" },
    RATING_STEPS.map((v) => el("option", { value: String(v), text: stars(v) })),
  );
  select.value = String(ratingOf(movie.movieId) ?? 4);
  const meta = [
    (movie.genres || []).join(", "),
    movie.n_ratings !== undefined ? `${movie.n_ratings} ratings` : "",
    movie.mean_rating !== undefined && movie.mean_rating !== null ? `mean ${fmt(movie.mean_rating, 1)}` : "",
  ].filter(Boolean);
  return el(
    "li",
    { class: "movie", "data-testid": "search-result", dataset: { movieId: movie.movieId } },
    poster(movie, "small"),
    el(
      "div",
      { class: "info" },
      el("span", { class: "title", "data-testid": "title", text: movie.title }),
      el("span", { class: "meta", text: meta.join(" · ") }),
    ),
    el("label", { class: "sr-only", for: id, text: `Your rating for ${movie.title}` }),
    select,
    el("button", {
      type: "button",
      "data-testid": "rate-button",
      "aria-label": `Rate ${movie.title}`,
      text: "Rate",
      onclick: () => rate(movie, Number(select.value)),
    }),
  );
}

// Show in the search results which movies are already rated.
function markRated() {
  for (const li of $("search-results").children) {
    const r = ratingOf(Number(li.dataset.movieId));
    li.classList.toggle("rated", r !== null);
    const button = li.querySelector("button");
    button.textContent = r === null ? "Rate" : "Update";
  }
}

// ---- the visitor's ratings ------------------------------------------------------------
function renderRatings() {
  const list = $("my-ratings");
  $("ratings-count").textContent = String(state.ratings.length);
  $("clear-ratings").hidden = state.ratings.length === 0;
  if (!state.ratings.length) {
    list.replaceChildren(el("li", { class: "empty", text: "Nothing rated yet: search a title above." }));
  } else {
    list.replaceChildren(
      ...state.ratings.map((r) =>
        el(
          "li",
          { class: "movie", "data-testid": "my-rating", dataset: { movieId: r.movieId } },
          poster(r, "small"),
          el(
            "div",
            { class: "info" },
            el("span", { class: "title", "data-testid": "title", text: r.title }),
            el("span", { class: "meta", text: (r.genres || []).join(", ") }),
          ),
          el("span", { class: "mine", "data-testid": "my-rating-value", text: stars(r.rating) }),
          el("button", {
            type: "button",
            class: "link",
            "data-testid": "remove-rating",
            "aria-label": `Remove your rating of ${r.title}`,
            text: "remove",
            onclick: () => unrate(r.movieId),
          }),
        ),
      ),
    );
  }
  $("mine-hint").textContent =
    state.user === null
      ? "Kept in this browser only, and sent with each request."
      : `Kept in this browser; not used while showing user ${state.user}.`;
  renderWho();
}

function renderWho() {
  const n = state.ratings.length;
  $("who-now").textContent =
    state.user === null
      ? `Showing picks for you (${n} rating${n === 1 ? "" : "s"} in this browser).`
      : `Showing picks for user ${state.user}.`;
  $("user-clear").hidden = state.user === null;
}

// ---- recommendations --------------------------------------------------------------------
let refreshTimer = 0;

function refreshSoon(delay) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, delay);
}

async function refresh() {
  clearTimeout(refreshTimer);
  const seq = ++state.recSeq;
  const section = document.querySelector(".recs");
  section.setAttribute("aria-busy", "true");
  try {
    let data;
    if (state.user !== null) {
      const q = query({ user: state.user, k: TOP_K, risk_aversion: state.risk, model: state.model });
      data = await api(`v1/recommendations?${q}`);
    } else {
      data = await api("v1/recommendations", {
        method: "POST",
        body: {
          history: state.ratings.map((r) => ({ movieId: r.movieId, rating: r.rating })),
          k: TOP_K,
          risk_aversion: state.risk,
          model: state.model || null,
        },
      });
    }
    if (seq !== state.recSeq) return;
    clearError("recs");
    renderRecs(data);
  } catch (e) {
    if (seq !== state.recSeq) return;
    renderRecs(null, e);
    showError(e, "recommendations failed", "recs");
  } finally {
    if (seq === state.recSeq) {
      section.removeAttribute("aria-busy");
      state.shown += 1;
      section.dataset.requestCount = String(state.shown);
    }
  }
}

function basisText(data) {
  const parts = [`model ${data.model}`];
  if (data.basis === "fold-in" && state.user !== null) {
    parts.push(`for user ${state.user}, from their saved ratings (folded in, no retraining)`);
  } else if (data.basis === "fold-in") {
    const n = state.ratings.length;
    parts.push(`from your ${n} rating${n === 1 ? "" : "s"} (folded in, no retraining)`);
  } else if (data.basis === "model") {
    parts.push(`for user ${data.user}`);
  } else {
    parts.push("fallback list");
  }
  parts.push(`risk aversion ${fmt(state.risk, 1)}`);
  if (data.retrieval && data.retrieval !== "exact") parts.push(`${data.retrieval} retrieval`);
  return parts.join(" · ");
}

function renderRecs(data, error) {
  const list = $("recs-list");
  const fallback = $("fallback");
  const section = document.querySelector(".recs");
  if (error) {
    section.dataset.basis = "error";
    $("recs-meta").textContent = "no recommendations: see the message above";
    fallback.hidden = true;
    list.replaceChildren(el("li", { class: "empty", "data-testid": "recs-error", text: error.message }));
    return;
  }
  section.dataset.basis = data.basis;
  section.dataset.model = data.model;
  $("recs-meta").textContent = basisText(data);
  if (data.basis === "fallback" && data.fallback) {
    const hint = state.user === null && !state.ratings.length ? " Rate a few movies to make it yours." : "";
    fallback.textContent = `Not personalised: ${data.fallback.text}.${hint}`;
    fallback.hidden = false;
  } else {
    fallback.hidden = true;
    fallback.textContent = "";
  }
  const items = data.items || [];
  if (!items.length) {
    list.replaceChildren(el("li", { class: "empty", text: "Nothing left to recommend from this catalogue." }));
    return;
  }
  list.replaceChildren(...items.map(card));
}

function stat(label, value, extra = null, title = null) {
  return el("div", { class: "stat", title }, el("dt", { text: label }), el("dd", {}, value, extra));
}

function card(item) {
  const conf = item.confidence === null || item.confidence === undefined ? null : item.confidence;
  const meter = conf === null ? null : el("meter", { min: "0", max: "1", value: String(conf), "aria-hidden": "true" });
  const predicted =
    item.predicted_rating === null || item.predicted_rating === undefined
      ? stat("Score", fmt(item.score), null, "this model ranks without predicting a rating")
      : stat("Predicted", stars(item.predicted_rating));
  const why = item.explanation && item.explanation.text;
  return el(
    "li",
    {
      class: "card",
      "data-testid": "rec",
      dataset: { movieId: item.movieId, rank: item.rank, score: item.score ?? "" },
    },
    poster(item),
    el(
      "div",
      { class: "body" },
      el(
        "h3",
        {},
        el("span", { class: "rank", text: String(item.rank) }),
        el("span", { class: "title", "data-testid": "title", text: item.title }),
      ),
      el(
        "p",
        { class: "genres" },
        (item.genres || []).map((g) => el("span", { class: "chip", text: g })),
      ),
      el(
        "dl",
        { class: "stats" },
        predicted,
        stat("Confidence", conf === null ? "–" : `${Math.round(conf * 100)}%`, meter),
        stat("σ", fmt(item.sigma), null, "spread of the movie's ratings"),
      ),
      el("p", { class: "why", "data-testid": "explanation", text: why || "no explanation given" }),
    ),
  );
}

// ---- models -------------------------------------------------------------------------------
async function loadModels() {
  const select = $("model");
  try {
    const data = await api("v1/models");
    const models = data.models || [];
    select.replaceChildren(
      ...models.map((m) =>
        el("option", {
          value: m.name,
          text: m.name === m.model ? m.name : `${m.name} (${m.model})`,
          title: `${m.n_items} movies, ${m.n_users} users, ${m.retrieval} retrieval`,
        }),
      ),
    );
    state.model = data.default || (models[0] && models[0].name) || "";
    select.value = state.model;
    select.disabled = models.length < 2;
  } catch (e) {
    select.replaceChildren(el("option", { value: "", text: "default" }));
    showError(e, "could not list the models", "models");
  }
}

// ---- saving ratings (optional, needs the API key) ------------------------------------------
async function save(event) {
  event.preventDefault();
  const status = $("save-status");
  const typed = parseUserId($("save-user").value);
  const user = typed === null ? NaN : Number(typed);
  if (!Number.isSafeInteger(user)) {
    status.textContent = "give a whole-number user id (at most 2^53)";
    return;
  }
  if (!state.ratings.length) {
    status.textContent = "nothing to save: rate a movie first";
    return;
  }
  status.textContent = "saving…";
  try {
    const data = await api("v1/ratings", {
      method: "POST",
      headers: { "X-API-Key": $("api-key").value },
      body: {
        ratings: state.ratings.map((r) => ({ user, movieId: r.movieId, rating: r.rating, timestamp: r.ts })),
      },
    });
    status.textContent = `saved as user ${user}: ${data.stored} new, ${data.duplicates} already stored`;
    clearError("save");
  } catch (e) {
    status.textContent = "not saved";
    showError(e, "saving failed", "save");
  }
}

// A user id stays the digits typed: ids beyond 2**53 would lose digits as a Number.
function parseUserId(text) {
  const t = String(text).trim();
  return /^-?\d+$/.test(t) ? t : null;
}

// ---- wiring ---------------------------------------------------------------------------------
function wire() {
  $("search").addEventListener("input", scheduleSearch);
  $("search").addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      clearTimeout(searchTimer);
      search();
    }
  });
  $("risk").addEventListener("input", () => {
    state.risk = Number($("risk").value);
    $("risk-value").textContent = fmt(state.risk, 1);
    refreshSoon(SLIDER_DELAY_MS);
  });
  $("model").addEventListener("change", () => {
    state.model = $("model").value;
    refresh();
    if ($("search").value.trim()) search(); // another model may hold another catalogue
  });
  $("user-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const raw = $("user-id").value;
    if (String(raw).trim() === "") {
      state.user = null;
    } else {
      const user = parseUserId(raw);
      if (user === null) {
        showError(new ApiError(`“${raw}” is not a user id (a whole number)`), "known user", "user");
        return;
      }
      clearError("user");
      state.user = user;
      $("save-user").value = user;
    }
    renderRatings();
    refresh();
  });
  $("user-clear").addEventListener("click", () => {
    state.user = null;
    $("user-id").value = "";
    renderRatings();
    refresh();
  });
  $("clear-ratings").addEventListener("click", () => {
    state.ratings = [];
    storeRatings();
    renderRatings();
    markRated();
    refresh();
  });
  $("save-form").addEventListener("submit", save);
  $("error-close").addEventListener("click", () => clearError());
}

async function main() {
  wire();
  state.risk = Number($("risk").value); // a reloaded page may keep the slider's position
  $("risk-value").textContent = fmt(state.risk, 1);
  renderRatings();
  await loadModels();
  refresh();
}

main();
