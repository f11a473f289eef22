#include "net/unix_socket.h"
