"""What both services do at their HTTP edge, written once: RFC 9457 problem documents for every
error (`http_edge.problems`) and the request body limit (`http_edge.body_limit`)."""
