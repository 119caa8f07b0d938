import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { static as serveStatic } from 'express';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The console's page allows only its own script, style and API calls: no inline script or style,
 * nothing from another origin, no framing, no plugins, forms only to itself.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** dist/console, where `npm run build` puts the bundle, found from wherever this file runs (dist or sources). */
export function consoleDir(): string | null {
  for (let dir = __dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) {
      const built = join(dir, 'dist', 'console');
      return existsSync(join(built, 'index.html')) ? built : null;
    }
  }
  return null;
}

/**
 * Serves the web console's bundle at /console (its sign-in and session routes are the
 * ConsoleController's, under /console/session). Without a build, /console says how to make one.
 */
export function serveConsole(app: NestExpressApplication): void {
  const dir = consoleDir();
  app.use('/console', (req: Request, res: Response, next: NextFunction) => {
    if (req.path.startsWith('/session')) {
      next();
      return;
    }
    res.setHeader('Content-Security-Policy', CONSOLE_CSP);
    if (!dir) {
      res.status(404).type('text/plain').send('The web console is not built: run `npm run build`.\n');
      return;
    }
    // The page itself, at /console as at /console/ (serve-static would only redirect the first).
    if (req.path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.sendFile(join(dir, 'index.html'));
      return;
    }
    next();
  });
  if (dir) app.use('/console', serveStatic(dir, { index: false, redirect: false, fallthrough: true, dotfiles: 'ignore' }));
}
