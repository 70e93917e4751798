/* http.h - the server's HTTP side (http.c) on libmicrohttpd. */
#ifndef KVL_SERVER_HTTP_H
#define KVL_SERVER_HTTP_H
#include <stdbool.h>
#include <sys/socket.h>

#include "server/srv.h"

/* Listen on addr (one thread per connection); s->port = the port bound. -1 when the daemon cannot start. */
int srv_http_start(srv_server *s, const struct sockaddr *addr, bool ipv6);
/* Stop accepting connections (those open go on). */
void srv_http_quiesce(srv_server *s);
/* Wait (at most secs) until every finished job's response has been sent. */
void srv_http_drain(srv_server *s, double secs);
/* Close every connection and stop (waits for the connection threads). */
void srv_http_stop(srv_server *s);
#endif
