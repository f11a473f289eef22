#include "net/curl_http_client.h"
