// The page peer's lint (netsim/peers/page/*.js), run by .ci/run without root:
// eslint's recommended rules, ES modules in a browser, no file over 300 lines, and every field of a class
// declared in its constructor (a field first set in some other method is how state hid in the old page).
import js from "@eslint/js";

const browser = Object.fromEntries(
  [
    "window", "document", "performance", "WebSocket", "RTCPeerConnection", "MediaStream", "AudioContext",
    "setTimeout", "clearTimeout", "setInterval", "clearInterval", "console",
  ].map((name) => [name, "readonly"]),
);

const fieldsInConstructor = {
  meta: { type: "problem", messages: { late: "this.{{name}} is first set outside the constructor: declare it there" } },
  create(context) {
    const assigned = (node) =>
      node.type === "AssignmentExpression" &&
      node.left.type === "MemberExpression" &&
      node.left.object.type === "ThisExpression" &&
      !node.left.computed
        ? node.left.property.name
        : null;
    const walk = (node, visit) => {
      if (!node || typeof node.type !== "string") return;
      visit(node);
      for (const [key, value] of Object.entries(node)) {
        if (key === "parent") continue;
        if (Array.isArray(value)) value.forEach((v) => walk(v, visit));
        else if (value && typeof value.type === "string") walk(value, visit);
      }
    };
    return {
      ClassBody(body) {
        const declared = new Set();
        const methods = body.body.filter((m) => m.type === "MethodDefinition");
        for (const m of methods.filter((m) => m.kind === "constructor")) {
          walk(m.value.body, (n) => assigned(n) && declared.add(assigned(n)));
        }
        for (const m of methods.filter((m) => m.kind !== "constructor")) {
          walk(m.value.body, (n) => {
            const name = assigned(n);
            if (name && !declared.has(name)) context.report({ node: n, messageId: "late", data: { name } });
          });
        }
      },
    };
  },
};

export default [
  { ignores: ["node_modules/**", "reports/**", ".venv/**"] },
  { ...js.configs.recommended, files: ["netsim/peers/page/**/*.js"] },
  {
    files: ["netsim/peers/page/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: browser },
    plugins: { netsim: { rules: { "fields-in-constructor": fieldsInConstructor } } },
    rules: {
      "max-lines": ["error", { max: 300 }],
      "no-unused-vars": ["error", { caughtErrors: "none" }],
      "netsim/fields-in-constructor": "error",
    },
  },
];
