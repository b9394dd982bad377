// The race soak's forbidden program: proves it ran by creating ./marker.
#include <fcntl.h>
#include <unistd.h>
int main(void) {
    int fd = open("marker", O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
    return 0;
}
