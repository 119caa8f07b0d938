# rcflow's image: one image for the API, the worker and the command line (docker-compose.yml).
# Build stage: every dependency (TypeScript, esbuild for the console), then `npm run build`.
# Runtime stage: production dependencies and dist/ only, as the unprivileged `node` user.
#
# `npm install`, never `npm ci`: ci refuses this lockfile (it lists no non-Linux platform packages).
# --ignore-scripts: the same as package.json's npm 11 policy (allowScripts: none); every package
# rcflow uses works without its install script (native parts come prebuilt).
ARG NODE_IMAGE=node:20-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY apps ./apps
COPY libs ./libs
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm install --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# Audit checkpoints (AUDIT_CHECKPOINT_DIR): the one place rcflow writes files; a volume mounted
# here starts with this directory's owner, so the node user can write it.
RUN mkdir -p /var/lib/rcflow/checkpoints && chown -R node:node /var/lib/rcflow
ENV AUDIT_CHECKPOINT_DIR=/var/lib/rcflow/checkpoints
USER node
# 3000: the API (PORT); 9465: the worker's ops listener (WORKER_HTTP_PORT: health, metrics).
EXPOSE 3000 9465
CMD ["node", "dist/apps/api/src/main.js"]
