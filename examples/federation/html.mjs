// The few HTML pages the example's servers show, and the headers they go out with.

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A whole page: `body` (and `head`) are HTML already escaped by the caller. */
export function page(title, body, head = '') {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="/example.css">
${head}</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

/** Sends `html` with `status` and headers that forbid inline script and framing. */
export function sendPage(res, status, html, formTargets = []) {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Security-Policy': [
      "default-src 'none'",
      "style-src 'self'",
      // A form's redirects are checked too: the login goes on to assent, a cancel back to
      // the relying party.
      `form-action 'self' ${formTargets.join(' ')}`.trim(),
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  });
  res.end(html);
}

/** The stylesheet both servers serve at /example.css. */
export const STYLESHEET = `body { font: 1rem/1.5 system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #f5f5f5; }
main { max-width: 28rem; margin: 3rem auto; padding: 2rem; background: #fff; border-radius: 8px; }
label { display: block; font-weight: 600; }
input { display: block; width: 100%; box-sizing: border-box; padding: .5rem; margin-top: .25rem; font: inherit; border: 1px solid #555; border-radius: 4px; }
button, .button { display: inline-block; padding: .5rem 1rem; font: inherit; border-radius: 4px; border: 1px solid #0b4f8a; background: #0b4f8a; color: #fff; text-decoration: none; cursor: pointer; }
button.secondary { background: #fff; color: #0b4f8a; }
:focus-visible { outline: 3px solid #b35900; outline-offset: 2px; }
[role="alert"] { color: #a00000; font-weight: 600; }
pre { white-space: pre-wrap; word-break: break-all; background: #f0f0f0; padding: .5rem; }
`;

/** Sends the stylesheet. */
export function sendStylesheet(res) {
  res.writeHead(200, {
    'Content-Type': 'text/css; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'max-age=3600',
  });
  res.end(STYLESHEET);
}

/** Reads a small `application/x-www-form-urlencoded` body (at most `limit` bytes). */
export async function readForm(req, limit = 4096) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) {
      throw new Error('form too large');
    }
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}
