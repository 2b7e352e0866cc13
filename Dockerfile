# Axon, a Matrix homeserver. Build:   docker build -t axon .
# First run (writes /data/homeserver.yaml and the signing key, then exits):
#   docker run --rm -v axon-data:/data axon -c /data/homeserver.yaml --generate-config -H example.com --report-stats=no --open-private-ports
# Run:
#   docker run -d --name axon -v axon-data:/data -p 8008:8008 axon
# --open-private-ports makes the generated listener bind all interfaces, so the
# published port reaches it. Point `database:` or DATABASE_URL at PostgreSQL for production.

# ---- build: compile TypeScript, then drop dev dependencies ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the "prepare" script runs tsc, and the sources are not copied yet.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts

# ---- runtime ----
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# The image's "node" user (uid 1000) runs the server; /data is its volume.
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root config ./config
# axon, axonctl and register_new_matrix_user on PATH, as the README's install does:
#   docker exec -it axon register_new_matrix_user -c /data/homeserver.yaml http://localhost:8008
RUN npm install --global --offline --no-audit --no-fund /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8008
# SIGTERM (docker stop) shuts down gracefully; allow it time: docker stop -t 30.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/src/main.js"]
CMD ["-c", "/data/homeserver.yaml"]
