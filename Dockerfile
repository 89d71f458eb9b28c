# The Kairos node image, used by docker-compose.yml: `docker build -t kairos .`
# Runs `kairos start`; configure it with KAIROS_* variables (docs/operations.md).

FROM node:20-bookworm-slim AS build
# better-sqlite3 and zookeeper compile native code on install (zookeeper builds the ZooKeeper C client).
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# `npm install`, not `npm ci`, for the reason given in .ci/run (the lock file lacks other platforms'
# optional packages, which `npm ci` refuses).
RUN npm install --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY domain ./domain
COPY src ./src
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
# The native modules link against libstdc++ (in the slim image today; named so a base change keeps it).
RUN apt-get update \
  && apt-get install -y --no-install-recommends libstdc++6 \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
  KAIROS_HOST=0.0.0.0 \
  KAIROS_PORT=8080 \
  KAIROS_DATA_DIR=/var/lib/kairos
WORKDIR /app
# package.json: "type": "module" makes dist/ ESM, and `kairos --version` reads it.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN mkdir -p /var/lib/kairos && chown node:node /var/lib/kairos
USER node
VOLUME /var/lib/kairos
EXPOSE 8080
# The young generation of src/threads/youngGeneration.ts, as the `kairos` command's shebang gives it.
CMD ["node", "--max-semi-space-size=64", "dist/src/cli/main.js", "start"]
