# AiCUnet: one image for every role; SERVICES chooses what a container hosts.
# Build stage: all dependencies, the compiled server (dist/) and the web console (dist/ui).
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build

# Runtime stage: production dependencies only, the compiled code, the built console, a non-root user.
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    PORT=3000 \
    METRICS_PORT=3030 \
    LOG_FORMAT=json
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY public/docs ./public/docs
USER node
EXPOSE 3000 3030
# Every role answers /health/live on PORT (the gateway itself, the others a small probe server); three misses in a
# row (45 s) cover a slow start too.
HEALTHCHECK --interval=15s --timeout=3s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT}/health/live`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/bin/start.js"]
