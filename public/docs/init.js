// Kept out of index.html so the page works under the gateway's Content-Security-Policy (no inline scripts).
window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
