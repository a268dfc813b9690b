# One image for every Tally process (ingest, worker, dashboard, migrate, all-in-one).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
# npm ci runs the postinstall that generates the Prisma client from prisma/.
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev \
  && mkdir -p node_modules/@prisma/internals/build \
  && cp node_modules/@prisma/schema-engine-wasm/schema_engine_bg.wasm node_modules/@prisma/internals/build/

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/prisma ./prisma
# The ingest spool's default directory (TALLY_SPOOL_DIR), writable by the process; mount a
# volume there so spooled reports survive the container.
RUN mkdir -p /app/.tally/spool && chown -R node:node /app/.tally
USER node
EXPOSE 8080 8081
CMD ["node", "dist/src/main.js"]
