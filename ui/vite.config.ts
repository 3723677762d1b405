// Builds the center's pages (Preact) into ui/dist, served by src/center/ui.ts at /ui/.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/ui/',
  // JSX compiles to Preact's automatic runtime; no React, no compat layer.
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The server's CSP allows scripts from 'self' only: nothing inline, not even the preload polyfill.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 400,
  },
});
