//! `~/.config/lmx/boards` honours XDG_CONFIG_HOME. Its own test binary,
//! as it changes the process environment.

#[test]
fn user_dir_respects_xdg_config_home() {
    std::env::set_var("XDG_CONFIG_HOME", "/tmp/xdg-test");
    assert_eq!(
        lmx_boards::user_boards_dir().unwrap(),
        std::path::PathBuf::from("/tmp/xdg-test/lmx/boards")
    );
    std::env::remove_var("XDG_CONFIG_HOME");
    std::env::set_var("HOME", "/home/someone");
    assert_eq!(
        lmx_boards::user_boards_dir().unwrap(),
        std::path::PathBuf::from("/home/someone/.config/lmx/boards")
    );
}
